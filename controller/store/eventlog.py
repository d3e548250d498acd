"""The event log on SQLite: append-only, group-committed, durable before anyone is told.

One table, ``events(seq, time, type, version, sweep_id, data)``; triggers refuse every UPDATE
and DELETE on it. The database runs in WAL mode with ``synchronous=FULL``, so a committed
transaction survives a power cut, not only a process crash.

Group commit: :meth:`EventStore.enqueue` gives an event its sequence number at once (so the
caller can fold it into the in-memory state in log order) and returns a future that resolves
when the event's transaction has committed. One writer task drains everything enqueued so far
into a single transaction, so N concurrent appends cost one fsync, not N. :meth:`append` is the
plain "append and wait until durable" form.

A failed commit is fatal: the in-memory state has already folded events the log does not
hold, so the store marks itself broken, fails every waiter with :class:`StoreFailedError`
and the service shuts down; a restart replays the log, which is the truth.

Snapshots (``snapshots(seq, format, time, data)``) hold the folded state as JSON at a durable
seq; :meth:`EventStore.load_latest_snapshot` plus :meth:`EventStore.read_from` the snapshot's
seq replays only the tail.

Metric records live only in the log (the State keeps their summary): ``run_metrics(run_id,
seq)`` indexes the ``MetricsLogged`` rows by run, written in the same transaction as the rows
themselves, so :meth:`EventStore.read_run_metrics` reads one run's records without a scan. A log
written before the index existed gets it built once, when it is first opened.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fcntl
import functools
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from controller import jsontext
from controller.core import events as ev
from controller.core.errors import OpensweepError

log = logging.getLogger("opensweep.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    sweep_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_sweep ON events (sweep_id, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TABLE IF NOT EXISTS run_metrics (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS run_metrics_no_update BEFORE UPDATE ON run_metrics
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS run_metrics_no_delete BEFORE DELETE ON run_metrics
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY,
    format INTEGER NOT NULL,
    time REAL NOT NULL,
    data TEXT NOT NULL
);
"""

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of a log this code wrote: 1 = ``run_metrics`` is complete. A log at 0
(written before ``run_metrics``) gets the index built on open; a newer one is refused."""
KEEP_SNAPSHOTS = 2
"""Snapshots kept (each is the whole state; older ones are deleted when a new one lands)."""
MAX_ROWS_PER_COMMIT = 1000
"""Rows in one commit (one INSERT of six parameters a row; SQLite's default limit on a
statement's parameters is 32,766). More pending rows are committed in the next round."""
READ_CHUNK = 5000
"""Rows fetched per round trip to the reader thread while replaying or reading."""
READ_PART = 500
"""Rows replay parses and folds at a time, of the READ_CHUNK fetched at once (see
:meth:`EventStore.read_stored`)."""


class StoreError(OpensweepError):
    """The event log cannot be opened or read (not a database, a newer schema, corrupt rows)."""


class StoreFailedError(StoreError):
    """A commit failed; the store accepts nothing more (the service must restart)."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the log, decoded."""

    seq: int
    event: ev.Event


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One row of the log as stored (for serving the audit log without decoding)."""

    seq: int
    time: float
    type: str
    version: int
    sweep_id: str
    data: str


_COLUMNS = {"events": "(seq, time, type, version, sweep_id, data)", "run_metrics": "(run_id, seq)"}


@functools.lru_cache(maxsize=512)
def _insert_sql(table: str, rows: int) -> str:
    """The INSERT of ``rows`` rows into ``table`` (SQLite caches the prepared statement by its
    text too)."""
    columns = _COLUMNS[table]
    marks = "(" + ",".join("?" * (columns.count(",") + 1)) + ")"
    return f"INSERT INTO {table} {columns} VALUES " + ",".join([marks] * rows)


class EventStore:
    """The append-only event log of one controller. Open with :meth:`open`, then ``close``.

    ``last_seq`` is the highest sequence number handed out (durable or not), ``durable_seq``
    the highest one committed. Only one process may write a database at a time (SQLite's lock
    makes a second writer fail with "database is locked").
    """

    def __init__(self, path: Path, writer: aiosqlite.Connection,
                 reader: aiosqlite.Connection, last_seq: int, lock_fd: int | None = None) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self._writer = writer
        self._reader = reader
        self.last_seq = last_seq
        self.durable_seq = last_seq
        self._pending: list[tuple[int, float, str, int, str, str]] = []
        self._pending_metrics: list[tuple[str, int]] = []
        self._waiters: list[tuple[int, asyncio.Future[int]]] = []
        self._watchers: list[tuple[int, asyncio.Future[int]]] = []
        self._wake = asyncio.Event()
        self._durable_changed = asyncio.Condition()
        self._failed: BaseException | None = None
        self._closing = False
        self._write_lock = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(self._write_loop())
        self.commits = 0
        """Transactions committed since opening (group-commit efficiency = appended / commits)."""
        self.appended = 0
        """Events committed since opening."""

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open(cls, path: str | Path) -> EventStore:
        """Open (creating if needed) the log at ``path``; StoreError when it is not usable."""
        db_path = Path(path)
        lock_fd = _lock(db_path)
        try:
            writer = await aiosqlite.connect(db_path, isolation_level=None)
        except Exception as exc:  # sqlite3 raises a handful of unrelated types here
            os.close(lock_fd)
            raise StoreError(f"cannot open event log {db_path}: {exc}") from exc
        try:
            await writer.execute("PRAGMA journal_mode=WAL")
            await writer.execute("PRAGMA synchronous=FULL")
            await writer.execute("PRAGMA busy_timeout=5000")
            await writer.executescript(SCHEMA)
            await _upgrade(writer, db_path)
            async with writer.execute("SELECT COALESCE(MAX(seq), 0) FROM events") as cursor:
                row = await cursor.fetchone()
            last_seq = int(row[0]) if row else 0
            reader = await aiosqlite.connect(db_path, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout=5000")
        except StoreError:
            await writer.close()
            os.close(lock_fd)
            raise
        except Exception as exc:
            await writer.close()
            os.close(lock_fd)
            raise StoreError(f"cannot use {db_path} as an event log: {exc}") from exc
        return cls(db_path, writer, reader, last_seq, lock_fd)

    async def close(self) -> None:
        """Commit what is queued, then close. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        with contextlib.suppress(Exception):
            await self._task
        for conn in (self._writer, self._reader):
            with contextlib.suppress(Exception):
                await conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    # ------------------------------------------------------------------ appending

    def enqueue(self, event: ev.Event, data: dict[str, Any] | None = None
                ) -> tuple[int, asyncio.Future[int]]:
        """Give ``event`` the next seq and queue it; the future resolves (to the seq) once the
        event is durable, or fails with StoreFailedError. ``data`` is ``event.to_data()`` when
        the caller has it already."""
        if self._failed is not None:
            raise StoreFailedError(f"the event log failed earlier: {self._failed}")
        if self._closing:
            raise StoreFailedError("the event log is closed")
        text = jsontext.dumps(event.to_data() if data is None else data)
        self.last_seq += 1
        seq = self.last_seq
        self._pending.append((seq, event.time, event.TYPE, event.VERSION, event.sweep_id, text))
        if type(event) is ev.MetricsLogged:
            self._pending_metrics.append((event.run_id, seq))
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        self._wake.set()
        return seq, future

    async def append(self, events: Sequence[ev.Event]) -> int:
        """Append ``events`` (in order) and return the last seq once all are durable."""
        futures = [self.enqueue(e)[1] for e in events]
        seq = self.durable_seq
        for future in futures:
            seq = await future
        return seq

    def durable_future(self, seq: int) -> asyncio.Future[int]:
        """A future resolving (to ``seq``) once every event up to ``seq`` is durable."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if seq <= self.durable_seq:
            future.set_result(seq)
        elif self._failed is not None:
            future.set_exception(StoreFailedError(f"the event log failed: {self._failed}"))
        else:
            self._watchers.append((seq, future))
        return future

    async def wait_durable(self, seq: int) -> None:
        """Return once every event up to ``seq`` is durable (StoreFailedError if never)."""
        if seq <= self.durable_seq:
            return
        async with self._durable_changed:
            await self._durable_changed.wait_for(
                lambda: self.durable_seq >= seq or self._failed is not None)
        if self.durable_seq < seq:
            raise StoreFailedError(f"the event log failed: {self._failed}")

    @property
    def failed(self) -> BaseException | None:
        return self._failed

    async def _write_loop(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._pending) <= MAX_ROWS_PER_COMMIT:
                rows, self._pending = self._pending, []
                waiters, self._waiters = self._waiters, []
                metrics, self._pending_metrics = self._pending_metrics, []
            else:
                rows = self._pending[:MAX_ROWS_PER_COMMIT]
                waiters = self._waiters[:MAX_ROWS_PER_COMMIT]
                del self._pending[:MAX_ROWS_PER_COMMIT], self._waiters[:MAX_ROWS_PER_COMMIT]
                last = rows[-1][0]
                metrics = [m for m in self._pending_metrics if m[1] <= last]
                del self._pending_metrics[:len(metrics)]
            try:
                async with self._write_lock:
                    await self._commit(rows, metrics)
            except BaseException as exc:
                self._fail(exc, waiters)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            self.commits += 1
            self.appended += len(rows)
            self.durable_seq = rows[-1][0]
            for seq, future in waiters:
                if not future.done():
                    future.set_result(seq)
            if self._watchers:
                durable = self.durable_seq
                keep = []
                for seq, future in self._watchers:
                    if seq > durable:
                        keep.append((seq, future))
                    elif not future.done():
                        future.set_result(seq)
                self._watchers = keep
            async with self._durable_changed:
                self._durable_changed.notify_all()

    async def _commit(self, rows: list[tuple[Any, ...]], metrics: list[tuple[str, int]]) -> None:
        """Insert one group of events (and their run_metrics rows) in one transaction.

        One multi-row INSERT per table: ``executemany`` releases and re-takes the GIL for every
        row, and with the event loop busy each re-take is a thread handoff (~100 futex calls
        per commit, a sixth of the controller's CPU per suggestion). Without metrics rows the
        events' INSERT is the whole transaction: in autocommit mode a statement is its own
        transaction (all its rows or none, durable when it returns), so the commit is one
        round trip to the SQLite thread instead of three."""
        writer = self._writer
        params = [value for row in rows for value in row]
        if not metrics:
            await writer.execute(_insert_sql("events", len(rows)), params)
            return
        await writer.execute("BEGIN IMMEDIATE")
        try:
            await writer.execute(_insert_sql("events", len(rows)), params)
            await writer.execute(_insert_sql("run_metrics", len(metrics)),
                                 [value for row in metrics for value in row])
            await writer.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await writer.execute("ROLLBACK")
            raise

    def _fail(self, exc: BaseException, waiters: list[tuple[int, asyncio.Future[int]]]) -> None:
        log.critical("event log commit failed: %s", exc)
        self._failed = exc
        error = StoreFailedError(f"the event log could not commit: {exc}")
        for _, future in waiters + self._waiters + self._watchers:
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: nobody may be waiting any more
        self._waiters = []
        self._watchers = []
        self._pending = []
        self._pending_metrics = []

        async def notify() -> None:
            async with self._durable_changed:
                self._durable_changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    # ------------------------------------------------------------------ reading

    async def read_rows(self, after_seq: int = 0, sweep_id: str | None = None,
                        limit: int = READ_CHUNK) -> list[StoredRow]:
        """Up to ``limit`` durable rows with seq > ``after_seq`` (of one sweep if given)."""
        if sweep_id:
            sql = ("SELECT seq, time, type, version, sweep_id, data FROM events "
                   "WHERE sweep_id = ? AND seq > ? ORDER BY seq LIMIT ?")
            params: tuple[Any, ...] = (sweep_id, after_seq, limit)
        else:
            sql = ("SELECT seq, time, type, version, sweep_id, data FROM events "
                   "WHERE seq > ? ORDER BY seq LIMIT ?")
            params = (after_seq, limit)
        async with self._reader.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
        return [StoredRow(*row) for row in rows]

    async def read_from(self, after_seq: int = 0) -> AsyncIterator[StoredEvent]:
        """Every durable event with seq > ``after_seq``, decoded, in order."""
        seq = after_seq
        async for batch in self.read_batches(after_seq):
            for event in batch:
                seq += 1
                yield StoredEvent(seq, event)

    async def read_batches(self, after_seq: int = 0) -> AsyncIterator[list[ev.Event]]:
        """Every durable event with seq > ``after_seq``, decoded, in order, a chunk at a time.
        StoreError on a gap or an unreadable row."""
        seq = after_seq
        async for chunk in self.read_stored(after_seq):
            events = []
            for type_name, version, time, data in chunk:
                seq += 1
                try:
                    events.append(ev.decode(type_name, version, time, data))
                except ev.EventDecodeError as exc:
                    raise unreadable(seq, type_name, version, exc) from None
            yield events

    async def read_stored(self, after_seq: int = 0, lean: bool = False
                          ) -> AsyncIterator[list[Any]]:
        """Every durable event with seq > ``after_seq`` as ``(type, version, time, data)``
        with ``data`` parsed, in order, a chunk at a time: replay folds these straight
        (:func:`controller.core.state.fold_stored`), one JSON parse per chunk and no Event
        objects. StoreError on a gap or a row that is not JSON.

        ``lean`` (replay): a current-version ``MetricsLogged`` (three rows of four in a busy
        log) comes as a :class:`LeanMetrics` alone instead of a tuple, and a version 1 one with
        a :class:`LeanMetricsV1` as its data, read as SQLite gives a range's such rows in one
        piece: ``group_concat`` of their data (one bytes object, no Python object per row, made
        in the reader thread without the GIL) and of their seqs, which place each where it
        belongs among the range's other rows (read as rows). A range whose metrics rows do not
        all parse that way (a NaN, a row that is not exactly the type's) is read again row by
        row, as tuples.

        Ranges of READ_CHUNK seqs are each read by their own queries, which the reader thread
        runs while the previous range is parsed and folded; a chunk is a READ_PART of a range
        (its metrics rows joined on their own by the same query). Parsing, folding and freeing
        a chunk's objects (a few hundred kilobytes for a lean chunk of 500) then happen while
        they are still in the processor's cache: with whole ranges of 5,000 they were not, and
        replay took about 1.15 times as long (measured side by side, see docs/controller.md).
        The data comes as bytes (no text decoding; the parser reads UTF-8). Seqs are the
        table's integer primary key, so a range (lo, hi] is whole exactly when it holds
        hi - lo rows: counted, not checked seq by seq."""
        last = self.durable_seq
        reader = self._reader

        def fetch(lo: int) -> list[asyncio.Future[Any]]:
            hi = min(lo + READ_CHUNK, last)
            if not lean:
                return [asyncio.ensure_future(reader.execute_fetchall(_SCAN, (lo, hi)))]
            parts = -(-(hi - lo) // READ_PART)
            bounds = [min(lo + i * READ_PART, hi) for i in range(parts + 1)]
            return [asyncio.ensure_future(reader.execute_fetchall(_metrics_parts(parts), bounds)),
                    asyncio.ensure_future(reader.execute_fetchall(_OTHERS_RANGE, (lo, hi)))]

        lo = after_seq
        pending = fetch(lo) if lo < last else []
        try:
            while pending:
                results = [list(await future) for future in pending]
                hi = min(lo + READ_CHUNK, last)
                pending = fetch(hi) if hi < last else []
                # Let the queries for the next range reach the reader thread now, so it reads
                # while this range is parsed and folded.
                await asyncio.sleep(0)
                parts = _split(lo, hi, *results) if lean else [(lo, hi, results[0], None)]
                del results
                for part_lo, part_hi, rows, others in parts:
                    chunk = rows if others is None else _lean_chunk(part_lo, part_hi, rows, others)
                    if chunk is None:  # the metrics rows did not all parse lean
                        chunk = list(await reader.execute_fetchall(_SCAN, (part_lo, part_hi)))
                        lean_parsed = False
                    else:
                        lean_parsed = lean
                    if len(chunk) != part_hi - part_lo:
                        raise StoreError(f"the event log has a gap after seq "
                                         f"{await self._gap_after(part_lo, part_hi)}")
                    yield (chunk if lean_parsed
                           else parse_rows(chunk, range(part_lo + 1, part_hi + 1)))
                    # Drop it now: freed while still in the cache, before the next is made.
                    chunk = None
                lo = hi
        finally:
            # Let the fetches under way end (one reader thread, in order) before returning.
            for future in pending:
                with contextlib.suppress(Exception):
                    await future

    async def _gap_after(self, lo: int, hi: int) -> int:
        """The last seq before the first one missing in (lo, hi]."""
        async with self._reader.execute(
                "SELECT seq FROM events WHERE seq > ? AND seq <= ? ORDER BY seq", (lo, hi)
        ) as cursor:
            expected = lo + 1
            async for (seq,) in cursor:
                if seq != expected:
                    break
                expected += 1
        return expected - 1

    async def read_run_metrics(self, run_id: str) -> list[ev.Event]:
        """Every durable ``MetricsLogged`` event of ``run_id``, decoded, in order (the records
        are kept here only, not in the State). StoreError on an unreadable row."""
        async with self._reader.execute(
            "SELECT e.type, e.version, e.time, e.data, e.seq FROM run_metrics m "
            "JOIN events e ON e.seq = m.seq WHERE m.run_id = ? ORDER BY m.seq", (run_id,)
        ) as cursor:
            rows: list[Any] = list(await cursor.fetchall())
        events = []
        for row, (type_name, version, time, data) in zip(
                rows, parse_rows(rows, [row[4] for row in rows]), strict=True):
            try:
                events.append(ev.decode(type_name, version, time, data))
            except ev.EventDecodeError as exc:
                raise unreadable(row[4], type_name, version, exc) from None
        return events

    async def wait_for_more(self, seq: int, timeout: float | None = None) -> bool:
        """Wait until the durable log goes beyond ``seq``; False on timeout."""
        try:
            async with self._durable_changed:
                await asyncio.wait_for(
                    self._durable_changed.wait_for(
                        lambda: self.durable_seq > seq or self._failed is not None),
                    timeout)
        except TimeoutError:
            return False
        return self.durable_seq > seq

    # ------------------------------------------------------------------ snapshots

    async def save_snapshot(self, seq: int, format_version: int, time: float,
                            data_json: str) -> None:
        """Store a snapshot of the state at ``seq`` once ``seq`` is durable."""
        if seq > self.last_seq:
            raise StoreError(f"snapshot at seq {seq} is beyond the log (last seq "
                             f"{self.last_seq})")
        await self.wait_durable(seq)
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                await self._writer.execute(
                    "INSERT OR REPLACE INTO snapshots (seq, format, time, data) "
                    "VALUES (?, ?, ?, ?)", (seq, format_version, time, data_json))
                # Snapshots are a cache of the fold, not history: keep the newest few.
                await self._writer.execute(
                    "DELETE FROM snapshots WHERE seq NOT IN "
                    "(SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?)", (KEEP_SNAPSHOTS,))
                await self._writer.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    await self._writer.execute("ROLLBACK")
                raise

    async def load_latest_snapshot(self, format_version: int) -> tuple[int, str] | None:
        """(seq, JSON text) of the newest snapshot in ``format_version`` not beyond the log."""
        async with self._reader.execute(
            "SELECT seq, data FROM snapshots WHERE format = ? AND seq <= ? "
            "ORDER BY seq DESC LIMIT 1", (format_version, self.durable_seq)
        ) as cursor:
            row = await cursor.fetchone()
        return (int(row[0]), str(row[1])) if row else None


async def _upgrade(writer: aiosqlite.Connection, db_path: Path) -> None:
    """Bring a log written by an older controller up to :data:`SCHEMA_VERSION` (in one
    transaction: a crash leaves it as it was), or refuse one written by a newer one."""
    async with writer.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise StoreError(f"event log {db_path} has schema version {version}; this controller "
                         f"reads up to {SCHEMA_VERSION} (upgrade opensweep)")
    if version == SCHEMA_VERSION:
        return
    indexed = 0
    await writer.execute("BEGIN IMMEDIATE")
    try:
        # Version 0 -> 1: index the MetricsLogged rows already in the log by run.
        async with writer.execute(
            "SELECT type, version, time, data, seq FROM events "
            "WHERE type = ? ORDER BY seq", (ev.MetricsLogged.TYPE,)
        ) as cursor:
            while rows := list(await cursor.fetchmany(READ_CHUNK)):
                index = list(zip(_run_ids(rows), (row[4] for row in rows), strict=True))
                await writer.executemany(
                    "INSERT OR IGNORE INTO run_metrics (run_id, seq) VALUES (?, ?)", index)
                indexed += len(index)
        await writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        await writer.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            await writer.execute("ROLLBACK")
        raise
    if indexed:
        log.info("event log %s: %d MetricsLogged events indexed by run (once, for a log "
                 "written before run_metrics)", db_path, indexed)


class _RunOf(msgspec.Struct, gc=False):
    """A MetricsLogged's run id, all the index needs (the records are skipped, not built)."""

    run_id: str


_DECODE_RUN_IDS = msgspec.json.Decoder(list[_RunOf]).decode


def _run_ids(rows: list[Any]) -> list[str]:
    """The run ids of (type, version, time, data, seq) MetricsLogged rows (any version)."""
    try:
        return [r.run_id for r in _DECODE_RUN_IDS(_array([row[3] for row in rows]))]
    except msgspec.DecodeError:  # NaN in a record, or an odd row: read them in full
        return [str(data["run_id"])
                for _, _, _, data in parse_rows(rows, [row[4] for row in rows])]


def _lock(db_path: Path) -> int:
    """Hold an exclusive lock on ``<db>.lock`` for as long as the store is open (the kernel
    drops it when the process dies, even by SIGKILL): two controllers folding one log would
    each hand out the same sequence numbers and grid points."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open event log {db_path}: cannot create {lock_path}: "
                         f"{exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(f"event log {db_path} is in use by another controller (it holds "
                         f"{lock_path}); stop that one first") from None
    return fd


def loads_exact(text: str | bytes) -> Any:
    """``json.loads(text)``, by msgspec when it can (it reads integers of any size exactly, and
    refuses NaN/Infinity, which ``json`` then reads): for snapshots, read at every start and
    written by :func:`controller.jsontext.dumps`."""
    try:
        return _DECODE_ANY(text)
    except msgspec.DecodeError:
        return json.loads(text)


StoredData = tuple[str, int, float, Any]
"""An event as stored: type, version, time and its parsed data, a dict of the event's fields
(see ``events.decode``)."""


class LeanMetrics(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A current-version ``MetricsLogged``'s data as replay reads it (three of four events in a
    busy log): its columns, as lists. Its fields must be exactly the event's, as
    ``events.decode`` requires; a row that does not fit is read as a dict and goes the general
    way. Steps and times stay raw JSON, not made into objects (the fold does not read them).
    Not tracked by the cyclic collector: these hold no cycles, and replay makes a million."""

    sweep_id: str
    run_id: str
    seqs: list[int]
    steps: msgspec.Raw
    times: msgspec.Raw
    values: dict[str, list[bool | int | float | None]]


assert set(LeanMetrics.__struct_fields__) == set(ev.MetricsLogged.FIELDS)
_DECODE_ANY = msgspec.json.Decoder().decode
_DECODE_LEAN = msgspec.json.Decoder(list[LeanMetrics]).decode
_METRICS = ev.MetricsLogged.TYPE
_METRICS_VERSION = ev.MetricsLogged.VERSION
_SCAN = ("SELECT type, version, time, CAST(data AS BLOB) FROM events "
         "WHERE seq > ? AND seq <= ? ORDER BY seq")
_IS_METRICS = f"type = '{_METRICS}' AND version IN (1, {_METRICS_VERSION})"


@functools.lru_cache(maxsize=8)
def _metrics_parts(parts: int) -> str:
    """The MetricsLogged rows of ``parts`` consecutive ranges, each range's in one row: its
    index (0, 1, ...), then for version 2 and for version 1 how many rows, their seqs and
    their data, each joined by commas in the same row order (the aggregates see the rows in
    one pass; a ``FILTER`` per version rather than ``GROUP BY version``, which would copy every
    row's data into a sorter first: a third of the query's time). One statement, so one round
    trip to the reader thread; its ``parts + 1`` parameters are the ranges' bounds."""
    def joined(version: int) -> str:
        only = f"FILTER (WHERE version = {version})"
        return (f"sum(version = {version}), group_concat(seq) {only}, "
                f"CAST(group_concat(data, ',') {only} AS BLOB)")

    return " UNION ALL ".join(
        f"SELECT {k}, {joined(_METRICS_VERSION)}, {joined(1)} FROM events "
        f"WHERE seq > ?{k + 1} AND seq <= ?{k + 2} AND {_IS_METRICS}"
        for k in range(parts))


_OTHERS_RANGE = (f"SELECT seq, type, version, time, CAST(data AS BLOB) FROM events "
                 f"WHERE seq > ? AND seq <= ? AND NOT ({_IS_METRICS}) ORDER BY seq")
_DECODE_SEQS = msgspec.json.Decoder(list[int]).decode


class LeanRecordV1(msgspec.Struct, gc=False):
    """A record of a version 1 ``MetricsLogged`` as replay reads it: what the fold uses, and
    the keys the upcast to version 2 requires (step and time stay raw JSON)."""

    seq: int
    step: msgspec.Raw
    values: dict[str, bool | int | float]
    time: msgspec.Raw


class LeanMetricsV1(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A version 1 ``MetricsLogged`` (``records``, before columns) as replay reads it, so a log
    written before version 2 replays as fast as it did: folded record by record, which is what
    its upcast folds to. A row that does not fit (a null value, which the upcast refuses, a
    record without a step) goes the general way, through the upcast."""

    sweep_id: str
    run_id: str
    records: list[LeanRecordV1]


_DECODE_LEAN_V1 = msgspec.json.Decoder(list[LeanMetricsV1]).decode


def _lean_chunk(lo: int, hi: int, metrics: list[Any], others: list[Any]) -> list[Any] | None:
    """The events of seqs (lo, hi] as replay folds them, from that range's rows of
    :func:`_metrics_parts` (without the index) and :data:`_OTHERS_RANGE`: a
    :class:`LeanMetrics` per current-version MetricsLogged, a ``(type, version, time, data)``
    tuple per other event
    (``data`` a :class:`LeanMetricsV1` for a version 1 MetricsLogged, a dict otherwise). None
    when some metrics rows do not parse lean; shorter than the range when it has a gap."""
    if sum(count for _, count, _, _ in metrics) + len(others) != hi - lo:
        return []  # a gap (the caller locates it)
    chunk: list[Any] = [None] * (hi - lo)
    first = lo + 1
    for version, count, seqs_text, joined in metrics:
        leans: list[Any]
        try:
            if version == _METRICS_VERSION:
                leans = _DECODE_LEAN(b"[" + joined + b"]")
            else:
                leans = [(_METRICS, version, _NOT_READ, lean)
                         for lean in _DECODE_LEAN_V1(b"[" + joined + b"]")]
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None  # NaN, or a row that is not exactly a MetricsLogged: the general way
        seqs = _DECODE_SEQS(f"[{seqs_text}]")
        if len(leans) != count or len(seqs) != count:
            return None  # a row holding more than one JSON value: read row by row
        for seq, lean in zip(seqs, leans, strict=True):
            chunk[seq - first] = lean
    if others:
        datas = _parse_all([row[1:] for row in others], lambda i: others[i][0])
        for row, data in zip(others, datas, strict=True):
            chunk[row[0] - first] = (row[1], row[2], row[3], data)
    return chunk


def _split(lo: int, hi: int, metrics: list[Any], others: list[Any]
           ) -> list[tuple[int, int, list[Any], list[Any]]]:
    """The results of :func:`_metrics_parts` and :data:`_OTHERS_RANGE` for the range (lo, hi]
    as ``(part_lo, part_hi, metrics, others)`` for each of its READ_PARTs, in order."""
    by_part: dict[int, list[Any]] = {}
    for part, count, seqs, joined, count_v1, seqs_v1, joined_v1 in metrics:
        # sum() of no rows is NULL: a part without rows of that version.
        by_part[part] = ([(_METRICS_VERSION, count, seqs, joined)] if count else []) + (
            [(1, count_v1, seqs_v1, joined_v1)] if count_v1 else [])
    others_seqs = [row[0] for row in others]
    parts = []
    start = 0
    for k, part_lo in enumerate(range(lo, hi, READ_PART)):
        part_hi = min(part_lo + READ_PART, hi)
        end = bisect.bisect_right(others_seqs, part_hi, start)
        parts.append((part_lo, part_hi, by_part.get(k, []), others[start:end]))
        start = end
    return parts


_NOT_READ = float("nan")
"""The time of a version 1 MetricsLogged read lean: not read (the fold ignores a
MetricsLogged's time)."""


def unreadable(seq: int, type_name: str, version: int, exc: Exception) -> StoreError:
    """The error for a row that cannot be read, naming it."""
    return StoreError(f"event log row {seq} ({type_name} v{version}) is unreadable: {exc}")


def parse_rows(rows: Sequence[Any], seqs: Sequence[int]) -> list[StoredData]:
    """(type, version, time, data) of (type, version, time, data, ...) rows (data as text or
    UTF-8 bytes) whose seqs are ``seqs`` (to name a row that cannot be read): one JSON parse
    for the whole chunk, and row by row only to name the row at fault when that fails.

    msgspec parses a chunk in a fraction of ``json.loads``' time (the largest part of a
    replay) and gives the same values, integers of any size included. It refuses what our log
    may hold but strict JSON does not allow (NaN and infinite metric values, which
    ``json.dumps`` writes as ``NaN``/``Infinity``), so a chunk it refuses is parsed again by
    ``json``, which reads everything the log writes: replay gives back exactly the values the
    controller had."""
    return [(row[0], row[1], row[2], data)
            for row, data in zip(rows, _parse_all(rows, seqs.__getitem__), strict=True)]


def _array(texts: list[Any]) -> Any:
    """One JSON array of the rows' JSON texts (str, or UTF-8 bytes as replay reads them)."""
    if texts and isinstance(texts[0], bytes):
        try:
            return b"[" + b",".join(texts) + b"]"
        except TypeError:  # a mix (a row stored as text among blobs): all as bytes
            return b"[" + b",".join(t if isinstance(t, bytes) else t.encode() for t in texts) + b"]"
    try:
        return "[" + ",".join(texts) + "]"
    except TypeError:
        return "[" + ",".join(t if isinstance(t, str) else t.decode() for t in texts) + "]"


def _parse_all(rows: Sequence[Any], seq_of: Callable[[int], int]) -> list[Any]:
    """The parsed data (``row[3]``) of every row; a row that is not JSON is a StoreError
    naming it (``seq_of(i)`` is row i's seq)."""
    if not rows:
        return []
    text = _array([row[3] for row in rows])
    try:
        datas: list[Any] = _DECODE_ANY(text)
        return datas
    except msgspec.DecodeError:
        pass
    try:
        datas = json.loads(text)
        return datas
    except ValueError:
        datas = []
        for i, row in enumerate(rows):
            try:
                datas.append(json.loads(row[3]))
            except ValueError as exc:
                raise unreadable(seq_of(i), row[0], row[1], exc) from None
        return datas
