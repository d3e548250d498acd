"""The event log: durable before acknowledged, group-committed, append-only, snapshots."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core import events as ev
from controller.core.state import SNAPSHOT_FORMAT, State, fold
from controller.service.controller import load_state
from controller.store import EventStore, StoreError
from tests.unit.test_fold import Action, actions_strategy, simulate


def paused(i: int, sweep_id: str = "s0000000") -> ev.SweepPaused:
    return ev.SweepPaused(time=float(i), sweep_id=sweep_id, reason=f"r{i}")


def rows(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT seq, type, data FROM events ORDER BY seq"))


async def test_append_is_durable_when_it_returns_and_survives_reopening(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = await EventStore.open(db)
    assert await store.append([paused(1), paused(2)]) == 2
    assert [r[0] for r in rows(db)] == [1, 2], "acknowledged but not visible to another reader"
    await store.close()
    store = await EventStore.open(db)
    assert store.last_seq == store.durable_seq == 2
    read = [stored async for stored in store.read_from(0)]
    assert [(s.seq, s.event) for s in read] == [(1, paused(1)), (2, paused(2))]
    assert await store.append([paused(3)]) == 3
    await store.close()


async def test_enqueue_numbers_at_once_but_commits_later(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = await EventStore.open(db)
    seq, future = store.enqueue(paused(1))
    assert seq == 1 and store.last_seq == 1 and store.durable_seq == 0
    assert rows(db) == [], "the row may not be visible before the commit"
    assert await future == 1
    assert store.durable_seq == 1 and len(rows(db)) == 1
    await store.close()


async def test_concurrent_appends_are_group_committed(tmp_path: Path) -> None:
    store = await EventStore.open(tmp_path / "log.db")
    results = await asyncio.gather(*(store.append([paused(i)]) for i in range(300)))
    assert sorted(results) == list(range(1, 301))
    assert store.commits < 30, f"{store.commits} commits for 300 concurrent appends"
    assert [r[0] for r in rows(tmp_path / "log.db")] == list(range(1, 301))
    await store.close()


async def test_wal_and_full_sync_are_on(tmp_path: Path) -> None:
    store = await EventStore.open(tmp_path / "log.db")
    async with store._writer.execute("PRAGMA journal_mode") as cursor:
        assert tuple(await cursor.fetchone() or ()) == ("wal",)
    async with store._writer.execute("PRAGMA synchronous") as cursor:
        assert tuple(await cursor.fetchone() or ()) == (2,)  # FULL
    await store.close()


async def test_the_log_refuses_update_and_delete(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = await EventStore.open(db)
    await store.append([paused(1)])
    await store.close()
    with sqlite3.connect(db) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET type = 'x'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events")


async def test_read_rows_filters_by_sweep_and_pages(tmp_path: Path) -> None:
    store = await EventStore.open(tmp_path / "log.db")
    await store.append([paused(i, "aaaaaaaa" if i % 2 else "bbbbbbbb") for i in range(1, 11)])
    only_a = await store.read_rows(0, "aaaaaaaa")
    assert [r.seq for r in only_a] == [1, 3, 5, 7, 9]
    page = await store.read_rows(4, None, limit=3)
    assert [r.seq for r in page] == [5, 6, 7]
    assert json.loads(page[0].data)["reason"] == "r5"
    await store.close()


async def test_wait_for_more_wakes_on_commit(tmp_path: Path) -> None:
    store = await EventStore.open(tmp_path / "log.db")
    waiter = asyncio.ensure_future(store.wait_for_more(0, timeout=30))
    await asyncio.sleep(0)
    assert not waiter.done()
    await store.append([paused(1)])
    assert await waiter is True
    assert await store.wait_for_more(1, timeout=0.01) is False
    await store.close()


async def test_an_unreadable_row_names_its_seq(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = await EventStore.open(db)
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO events VALUES (1, 0, 'Bogus', 1, '', '{}')")
    store = await EventStore.open(db)
    with pytest.raises(StoreError, match=r"row 1 .*unknown event type 'Bogus'"):
        [s async for s in store.read_from(0)]
    await store.close()


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"cannot use .*not\.db as an event log"):
        await EventStore.open(bad)


async def test_state_loads_from_snapshot_plus_tail(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    created = ev.SweepCreated(time=0.0, sweep_id="s0000000", config={}, seed=1, method="random",
                              name="", grid_size=None, run_cap=None, metric_name="",
                              metric_goal="", metric_target=None, warnings=[])
    resumed = [ev.SweepResumed(time=float(i), sweep_id="s0000000", reason="") for i in range(5)]
    events: list[ev.Event] = [created, paused(1), *resumed, paused(9)]
    store = await EventStore.open(db)
    await store.append(events[:4])
    snapshot_state = fold(events[:4])
    await store.save_snapshot(4, SNAPSHOT_FORMAT, 0.0, json.dumps(snapshot_state.to_json()))
    await store.append(events[4:])
    # A snapshot in another format is ignored.
    await store.save_snapshot(6, SNAPSHOT_FORMAT + 1, 0.0, "{}")
    with pytest.raises(StoreError, match="beyond the log"):
        await store.save_snapshot(99, SNAPSHOT_FORMAT, 0.0, "{}")
    assert await store.load_latest_snapshot(SNAPSHOT_FORMAT) is not None
    loaded = await load_state(store)
    assert loaded == fold(events)
    assert loaded.seq == 8
    await store.close()


async def test_a_corrupt_snapshot_falls_back_to_full_replay(tmp_path: Path) -> None:
    store = await EventStore.open(tmp_path / "log.db")
    created = ev.SweepCreated(time=0.0, sweep_id="s0000000", config={}, seed=1, method="random",
                              name="", grid_size=None, run_cap=None, metric_name="",
                              metric_goal="", metric_target=None, warnings=[])
    await store.append([created, paused(1)])
    await store.save_snapshot(1, SNAPSHOT_FORMAT, 0.0, json.dumps({"format": SNAPSHOT_FORMAT}))
    loaded = await load_state(store)
    assert loaded == fold([created, paused(1)])
    assert isinstance(loaded, State)
    await store.close()


async def test_a_backlog_beyond_one_statement_is_committed_in_order_over_several_commits(
        tmp_path: Path) -> None:
    from controller.store.eventlog import MAX_ROWS_PER_COMMIT

    store = await EventStore.open(tmp_path / "log.db")
    count = 2 * MAX_ROWS_PER_COMMIT + 7
    # Every third event is a run's metrics: their run_metrics rows go with their own commit.
    events = [_metrics(f"run{i % 2}", [i], loss=float("nan") if i == 9 else 0.5) if i % 3 == 0
              else paused(i) for i in range(1, count + 1)]
    futures = [store.enqueue(event)[1] for event in events]
    assert await asyncio.gather(*futures) == list(range(1, count + 1))
    assert store.commits == 3 and store.appended == count
    assert [r[0] for r in rows(tmp_path / "log.db")] == list(range(1, count + 1))
    read = [stored.event async for stored in store.read_from(0)]
    assert read[:8] == events[:8] and read[-1] == events[-1] and len(read) == count
    assert math.isnan(read[8].records[0]["values"]["loss"])  # type: ignore[attr-defined]
    for run in ("run0", "run1"):
        indexed = await store.read_run_metrics(run)
        assert [e.records[0]["seq"] for e in indexed] == [  # type: ignore[attr-defined]
            i for i in range(1, count + 1) if i % 3 == 0 and f"run{i % 2}" == run]
    await store.close()


async def test_durable_future_resolves_after_the_commit_that_covers_it(tmp_path: Path) -> None:
    store = await EventStore.open(tmp_path / "log.db")
    assert store.durable_future(0).done()
    seq, _ = store.enqueue(paused(1))
    watcher = store.durable_future(seq)
    assert not watcher.done()
    assert await watcher == 1 and store.durable_seq >= 1
    await store.close()


async def test_a_failed_commit_fails_every_waiter_and_every_later_append(tmp_path: Path) -> None:
    from controller.store import StoreFailedError

    store = await EventStore.open(tmp_path / "log.db")
    await store.append([paused(1)])
    await store._writer.close()  # the disk is gone, as far as the store can tell
    _, first = store.enqueue(paused(2))
    watcher = store.durable_future(2)
    with pytest.raises(StoreFailedError, match="could not commit"):
        await first
    with pytest.raises(StoreFailedError):
        await watcher
    with pytest.raises(StoreFailedError, match="failed earlier"):
        store.enqueue(paused(3))
    with pytest.raises(StoreFailedError):
        await store.wait_durable(2)
    assert store.durable_seq == 1 and store.failed is not None
    await store.close()


async def test_a_second_store_on_the_same_log_is_refused_until_the_first_closes(
        tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    first = await EventStore.open(db)
    with pytest.raises(StoreError, match="in use by another controller"):
        await EventStore.open(db)
    await first.close()
    second = await EventStore.open(db)
    await second.close()


async def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    store = await EventStore.open(db)
    await store.append([paused(i) for i in range(1, 6)])
    for seq in range(1, 6):
        await store.save_snapshot(seq, SNAPSHOT_FORMAT, 0.0, json.dumps({"seq": seq}))
    await store.close()
    with sqlite3.connect(db) as conn:
        kept = [row[0] for row in conn.execute("SELECT seq FROM snapshots ORDER BY seq")]
    assert kept == [4, 5]


async def test_replay_reads_back_exactly_what_strict_json_cannot_hold(tmp_path: Path) -> None:
    """NaN and infinite metric values and integers beyond 64 bits come back as they went in
    (the fast JSON parser refuses the first and would turn the last into a float)."""
    import math

    db = tmp_path / "log.db"
    created = ev.SweepCreated(
        time=1.0, sweep_id="s1", config={"big": 10**30}, seed=1, method="random", name="",
        grid_size=None, run_cap=None, metric_name="loss", metric_goal="minimize",
        metric_target=None, warnings=[])
    assigned = ev.RunAssigned(time=2.0, sweep_id="s1", run_id="r1", run_index=0, agent_id="a",
                              params={"n": -(10**25), "lr": 0.00012345678901234567},
                              grid_index=None, suggestion_seed=2**63 - 1)
    metrics = ev.MetricsLogged.from_records(time=3.0, sweep_id="s1", run_id="r1", records=[
        {"seq": 0, "step": 0, "values": {"loss": math.inf, "acc": 0.5}, "time": 3.0}])
    store = await EventStore.open(db)
    for events in ([created, assigned], [created, assigned, metrics]):
        await store.append(events[store.last_seq:])
        chunks = [chunk async for chunk in store.read_stored(0)]
        stored = [row for chunk in chunks for row in chunk]
        assert [data for *_, data in stored] == [e.to_data() for e in events]
        assert type(stored[0][3]["config"]["big"]) is int
        assert type(stored[1][3]["params"]["n"]) is int
        assert await load_state(store) == fold(events)
    # The same from a snapshot: the state's JSON holds both too.
    state = fold(events)
    await store.save_snapshot(3, SNAPSHOT_FORMAT, 0.0, json.dumps(state.to_json()))
    loaded = await load_state(store)
    assert loaded == state and type(loaded.runs["r1"].params["n"]) is int
    await store.close()
    store = await EventStore.open(tmp_path / "ints.db")  # the big integers without an inf
    await store.append([created, assigned])
    state = fold([created, assigned])
    await store.save_snapshot(2, SNAPSHOT_FORMAT, 0.0, json.dumps(state.to_json()))
    loaded = await load_state(store)
    assert loaded == state and type(loaded.sweeps["s1"].config["big"]) is int
    assert type(loaded.runs["r1"].params["n"]) is int
    await store.close()


def _metrics(run_id: str, seqs: list[int], loss: float = 0.5) -> ev.MetricsLogged:
    return ev.MetricsLogged.from_records(time=3.0, sweep_id="s1", run_id=run_id, records=[
        {"seq": s, "step": 10 * s, "values": {"loss": loss}, "time": 3.0} for s in seqs])


async def test_metric_events_are_indexed_by_run_as_they_are_written(tmp_path: Path) -> None:
    store = await EventStore.open(tmp_path / "log.db")
    a0, b0, a1 = _metrics("a", [0, 1]), _metrics("b", [0]), _metrics("a", [2])
    await store.append([paused(1), a0, b0, paused(2), a1])
    assert await store.read_run_metrics("a") == [a0, a1]
    assert await store.read_run_metrics("b") == [b0]
    assert await store.read_run_metrics("c") == []
    await store.close()


async def test_a_log_from_before_the_index_gets_it_built_once_and_a_newer_one_is_refused(
        tmp_path: Path) -> None:
    import math

    db = tmp_path / "old.db"
    # A NaN among the records takes the index build off its fast parse: it must still work.
    events = [paused(1), _metrics("a", [0]), _metrics("b", [0, 1], math.nan), _metrics("a", [1])]
    _write_old_log(db, [(e.TYPE, e.VERSION, e.time, e.sweep_id, e.to_data()) for e in events])
    store = await EventStore.open(db)
    assert await store.read_run_metrics("a") == [events[1], events[3]]
    (b,) = await store.read_run_metrics("b")
    assert isinstance(b, ev.MetricsLogged) and [r["seq"] for r in b.records] == [0, 1]
    assert math.isnan(b.records[1]["values"]["loss"])
    await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        conn.execute("PRAGMA user_version = 2")
    with pytest.raises(StoreError, match="schema version 2; this controller reads up to 1"):
        await EventStore.open(db)


def _write_old_log(db: Path, rows: list[tuple[str, int, float, str, dict[str, Any]]]) -> None:
    """A log as controllers before ``run_metrics`` wrote it: the events table alone, rows
    (type, version, time, sweep_id, data) from seq 1."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, time REAL NOT NULL, "
                     "type TEXT NOT NULL, version INTEGER NOT NULL, sweep_id TEXT NOT NULL, "
                     "data TEXT NOT NULL)")
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", [
            (seq, time, type_name, version, sweep_id, json.dumps(data))
            for seq, (type_name, version, time, sweep_id, data) in enumerate(rows, 1)])


def _sweep_with_runs() -> list[ev.Event]:
    """A sweep whose runs log metrics of every kind replay must read back: floats, a NaN and
    an infinity, an int, names missing from some records, and a re-sent record."""
    def logged(run: str, records: list[tuple[int, dict[str, Any]]]) -> ev.MetricsLogged:
        return ev.MetricsLogged.from_records(
            time=5.0, sweep_id="s1", run_id=run,
            records=[{"seq": seq, "step": 10 * seq, "values": values, "time": 4.5 + seq}
                     for seq, values in records])

    events: list[ev.Event] = [
        ev.SweepCreated(time=1.0, sweep_id="s1", config={"early_terminate": {"type": "x"}},
                        seed=1, method="random", name="", grid_size=None, run_cap=None,
                        metric_name="loss", metric_goal="minimize", metric_target=None,
                        warnings=[]),
        ev.AgentRegistered(time=2.0, sweep_id="s1", agent_id="a1", hostname="h", pid=1)]
    for run in ("s1-0000", "s1-0001"):
        events.append(ev.RunAssigned(time=3.0, sweep_id="s1", run_id=run, run_index=0,
                                     agent_id="a1", params={"x": 1}, grid_index=None,
                                     suggestion_seed=5))
    events += [
        logged("s1-0000", [(0, {"loss": 0.5, "acc": 0.1}), (1, {"acc": 0.2})]),
        logged("s1-0001", [(0, {"loss": math.nan}), (1, {"loss": 0.75, "lr": 3})]),
        logged("s1-0000", [(1, {"loss": 0.0}), (2, {"loss": 0.25}), (3, {"loss": math.inf})]),
        logged("s1-0001", [(2, {"loss": 2}), (3, {"loss": 0.125, "acc": 0.9})]),
        ev.RunEnded(time=6.0, sweep_id="s1", run_id="s1-0000", state="finished", exit_code=0,
                    reason=""),
    ]
    return events


def _as_version_1(event: ev.Event) -> tuple[str, int, float, str, dict[str, Any]]:
    """The row the controller wrote for ``event`` before MetricsLogged version 2."""
    if isinstance(event, ev.MetricsLogged):
        return (event.TYPE, 1, event.time, event.sweep_id,
                {"sweep_id": event.sweep_id, "run_id": event.run_id, "records": event.records})
    return event.TYPE, event.VERSION, event.time, event.sweep_id, event.to_data()


# (READ_CHUNK, READ_PART): one range, ranges of one part, ranges of several parts.
_CHUNKS = [(5000, 500), (2, 2), (5, 2)]


@pytest.mark.parametrize(("chunk", "part"), _CHUNKS)
async def test_a_version_1_log_replays_to_the_state_of_its_version_2_events(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, part: int) -> None:
    from controller.store import eventlog

    monkeypatch.setattr(eventlog, "READ_CHUNK", chunk)  # also: ranges of seqs, read in turn
    monkeypatch.setattr(eventlog, "READ_PART", part)  # and parts of them, some with a NaN
    events = _sweep_with_runs()
    old = tmp_path / "v1.db"
    _write_old_log(old, [_as_version_1(e) for e in events])
    store = await EventStore.open(old)
    replayed = await load_state(store)
    expected = fold(events)
    assert replayed == expected
    assert json.dumps(replayed.to_json(), sort_keys=True) == \
        json.dumps(expected.to_json(), sort_keys=True)
    for run in ("s1-0000", "s1-0001"):
        logged = [e for e in events if isinstance(e, ev.MetricsLogged) and e.run_id == run]
        read = await store.read_run_metrics(run)
        assert json.dumps([e.records for e in read]) == json.dumps([e.records for e in logged])
    # A controller of this version carries on in the same log, writing version 2.
    more = [ev.MetricsLogged.from_records(time=7.0, sweep_id="s1", run_id="s1-0001", records=[
        {"seq": 4, "step": 40, "values": {"loss": 0.0625}, "time": 7.0}])]
    await store.append(more)
    await store.close()
    store = await EventStore.open(old)
    assert await load_state(store) == fold(events + more)
    await store.close()
    new = tmp_path / "v2.db"
    store = await EventStore.open(new)
    await store.append(events + more)
    assert await load_state(store) == fold(events + more)
    await store.close()


@pytest.mark.parametrize(("chunk", "part"), _CHUNKS)
async def test_a_gap_in_the_log_is_an_error_naming_where_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, part: int) -> None:
    from controller.store import eventlog

    monkeypatch.setattr(eventlog, "READ_CHUNK", chunk)
    monkeypatch.setattr(eventlog, "READ_PART", part)
    db = tmp_path / "gap.db"
    _write_old_log(db, [_as_version_1(e) for e in _sweep_with_runs()])
    with sqlite3.connect(db) as conn:  # seq 9 (the last) moved on to 12: 9, 10 and 11 missing
        conn.execute("INSERT INTO events SELECT 12, time, type, version, sweep_id, data "
                     "FROM events WHERE seq = 9")
        conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        conn.execute("DELETE FROM events WHERE seq = 9")
    store = await EventStore.open(db)
    with pytest.raises(StoreError, match="the event log has a gap after seq 8"):
        await load_state(store)
    with pytest.raises(StoreError, match="the event log has a gap after seq 8"):
        [e async for e in store.read_from(0)]
    await store.close()


@settings(max_examples=40, deadline=None)
@given(actions=actions_strategy, chunk=st.integers(1, 40), part=st.integers(1, 15))
def test_replay_by_ranges_and_parts_of_any_size_gives_the_state_of_the_events(
        actions: list[Action], chunk: int, part: int) -> None:
    """However the log is cut into ranges (one round trip each) and parts (parsed and folded
    in turn), replay gives the state of folding the events one by one."""
    from controller.store import eventlog

    events, _ = simulate(actions)

    async def replay(db: Path) -> State:
        store = await EventStore.open(db)
        try:
            await store.append(events)
            return await load_state(store)
        finally:
            await store.close()

    saved = eventlog.READ_CHUNK, eventlog.READ_PART
    eventlog.READ_CHUNK, eventlog.READ_PART = chunk, part
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state = asyncio.run(replay(Path(tmp) / "log.db"))
    finally:
        eventlog.READ_CHUNK, eventlog.READ_PART = saved
    expected = fold(events)
    assert state == expected
    assert json.dumps(state.to_json()) == json.dumps(expected.to_json())


async def test_a_metrics_row_that_is_not_json_is_named_by_replay(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    store = await EventStore.open(db)
    await store.append(_sweep_with_runs()[:5])
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO events VALUES (6, 5.0, 'MetricsLogged', 2, 's1', '{\"run')")
    store = await EventStore.open(db)
    with pytest.raises(StoreError, match=r"row 6 \(MetricsLogged v2\) is unreadable"):
        await load_state(store)
    await store.close()


def test_snapshot_json_reads_back_exactly() -> None:
    """Snapshots are written by jsontext.dumps and read by loads_exact: NaN, infinities and
    integers beyond 64 bits come back as they were."""
    import math

    from controller.jsontext import dumps as dumps_exact
    from controller.store.eventlog import loads_exact

    plain = {"a": [1, -0.0, 0.1, 10**30, -(2**64)], "b": {"c": None, "d": "é"}}
    assert loads_exact(dumps_exact(plain)) == plain
    assert type(loads_exact(dumps_exact(plain))["a"][3]) is int
    odd = {"summary": {"loss": math.nan, "up": math.inf, "down": -math.inf}, "n": 10**30}
    back = loads_exact(dumps_exact(odd))
    assert math.isnan(back["summary"]["loss"])
    assert back["summary"]["up"] == math.inf and back["summary"]["down"] == -math.inf
    assert back["n"] == 10**30
