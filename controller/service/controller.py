"""The controller's brain outside the pure core: commands in, events out, state by the fold.

:class:`Controller` owns the event log (:class:`~controller.store.EventStore`) and the State
folded from it. Every command (create a sweep, hand out a run, record metrics, lose an agent)
is checked against the current State, turned into events by asking the core what to do, and
*recorded*: each event is folded into the State and queued on the log in the same synchronous
step, so the State is always the fold of the log's first ``state.seq`` events. Callers get a
future that resolves once those events are durable, and nobody (client, agent, reader) is told
anything before that: the gRPC layer waits for it before it replies or pushes.

Because recording is synchronous, decisions about one sweep never interleave inside asyncio;
a decision that has to await (a bayes suggestion computed in a thread) holds the sweep's lock
so the next decision sees the run it created.

Seeds: a sweep's seed is chosen at creation (or given) and recorded in SweepCreated; the seed of
run ``i``'s suggestion is :func:`~controller.core.state.derive_seed` of it and recorded in
RunAssigned, so replay needs no randomness at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import string
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller import jsontext
from controller.core import events as ev
from controller.core import hyperband
from controller.core.config import SweepConfig, parse_config, parse_yaml
from controller.core.errors import ConfigError, OpensweepError, Problem
from controller.core.grid import Grid
from controller.core.random_search import sample_random
from controller.core.runs import RunRecord, SharedRunRecord
from controller.core.state import (
    AGENT_ACTIVE,
    RUN_END_STATES,
    RUN_RUNNING,
    SNAPSHOT_FORMAT,
    SWEEP_CANCELLED,
    SWEEP_FINAL,
    SWEEP_PAUSED,
    SWEEP_RUNNING,
    NotFoundError,
    PreconditionError,
    State,
    Sweep,
    apply,
    cap_reached,
    derive_seed,
    finish_reason,
    fold_stored,
    metric_records,
    next_grid_index,
    run_id_for,
)
from controller.store import EventStore, StoreError, StoreFailedError
from controller.store.eventlog import loads_exact, unreadable

log = logging.getLogger("opensweep.controller")

SWEEP_ID_ALPHABET = string.ascii_lowercase + string.digits
SWEEP_ID_LENGTH = 8
MAX_CONFIG_BYTES = 256 * 1024
"""Largest sweep config accepted (YAML/JSON text); a config is stored in every replay."""
MAX_RECORDS_PER_BATCH = 10_000
MAX_METRICS_PER_RECORD = 1_000
MAX_NAME_CHARS = 256
DEFAULT_HEARTBEAT_INTERVAL = 10.0
DEFAULT_SNAPSHOT_EVERY = 100_000
PAUSED_RETRY_SECONDS = 2.0
HELD_RETRY_SECONDS = 0.5


class InvalidRequestError(OpensweepError):
    """A request that can never succeed as sent (a missing field, a value out of range)."""


class AgentLink(Protocol):
    """The controller's handle on an agent's open stream (see :mod:`.agents`)."""

    def push_stop(self, run_id: str, reason: str, durable: asyncio.Future[Any] | None) -> None:
        """Send StopRun once ``durable`` resolves."""

    def close(self, reason: str) -> None:
        """End the stream (the agent will reconnect, or re-register if it was lost)."""


@dataclass(frozen=True)
class Assignment:
    """A run handed to an agent: the RunAssigned event's run plus what the agent needs."""

    run_id: str
    sweep_id: str
    params: dict[str, Any]
    program: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class NoWork:
    """Nothing to hand out now (``done`` False: ask again after ``retry_after``) or ever."""

    done: bool
    retry_after: float
    detail: str


@dataclass
class Settings:
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    heartbeat_timeout: float | None = None
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY

    @property
    def timeout(self) -> float:
        return self.heartbeat_timeout or 3 * self.heartbeat_interval


@dataclass
class _SweepRuntime:
    """What the controller keeps per sweep beside the State: the parsed config and its lock."""

    config: SweepConfig
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    grid: Grid | None = None
    records: dict[str, tuple[tuple[Any, ...], RunRecord]] = field(default_factory=dict)
    """Per run: what its engine record was built from, and the record (see ``run_records``)."""


class Controller:
    """Sweeps, runs and agents, event-sourced. Build with :meth:`open`; ``close`` at the end."""

    def __init__(self, store: EventStore, state: State, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.state = state
        self.settings = settings
        self.clock = clock
        self._sweeps: dict[str, _SweepRuntime] = {}
        self._links: dict[str, AgentLink] = {}
        started = time.monotonic()
        self._last_seen: dict[str, float] = {
            a.id: started for a in state.agents.values() if a.state == AGENT_ACTIVE
        }
        self._snapshot_seq = state.seq
        self._snapshot_task: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ life cycle

    @classmethod
    async def open(cls, db_path: str, settings: Settings | None = None) -> Controller:
        """Open the log at ``db_path`` and rebuild the State (from the newest snapshot, then
        the events after it)."""
        store = await EventStore.open(db_path)
        try:
            state = await load_state(store)
        except BaseException:
            await store.close()
            raise
        return cls(store, state, settings or Settings())

    def start(self) -> None:
        """Start the heartbeat monitor (lost agents become events)."""
        if self._monitor is None:
            self._monitor = asyncio.get_running_loop().create_task(self._monitor_loop())

    async def close(self, snapshot: bool = True) -> None:
        """Stop the monitor, wait for the log, write a snapshot and close the log."""
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._snapshot_task is not None:
            with contextlib.suppress(Exception):
                await self._snapshot_task
        if snapshot and self.store.failed is None and self.state.seq > self._snapshot_seq:
            with contextlib.suppress(Exception):
                await self.snapshot()
        await self.store.close()
        store = self.store
        if store.commits:
            log.info("event log: %d events in %d commits this session (%.1f per commit)",
                     store.appended, store.commits, store.appended / store.commits)

    async def snapshot(self) -> int:
        """Write a snapshot of the State as it is now; returns its seq."""
        seq = self.state.seq
        tree = self.state.to_json()  # a consistent copy; serialised off the event loop
        data = await asyncio.to_thread(jsontext.dumps, tree)
        await self.store.save_snapshot(seq, SNAPSHOT_FORMAT, self.clock(), data)
        self._snapshot_seq = max(self._snapshot_seq, seq)
        log.info("snapshot written at seq %d (%d bytes)", seq, len(data))
        return seq

    # ------------------------------------------------------------------ recording

    def record(self, *events: ev.Event) -> asyncio.Future[int]:
        """Fold ``events`` into the State and queue them on the log, in one synchronous step;
        the returned future resolves once the last one is durable."""
        store = self.store
        future: asyncio.Future[int] | None = None
        for event in events:
            if store.failed is not None:
                raise StoreFailedError(f"the event log failed: {store.failed}")
            data = event.to_data()
            apply(self.state, event, data)
            _, future = store.enqueue(event, data)
        if future is None:
            return self.durable_now()
        if self.state.seq - self._snapshot_seq >= self.settings.snapshot_every:
            self._schedule_snapshot()
        return future

    def durable_now(self) -> asyncio.Future[int]:
        """A future that resolves once everything recorded so far is durable."""
        return self.store.durable_future(self.state.seq)

    async def consistent(self) -> int:
        """Wait until the State's every event is durable and return its seq: what a reader may
        report without showing anything that could still be lost."""
        seq = self.state.seq
        await self.store.wait_durable(seq)
        return seq

    def _schedule_snapshot(self) -> None:
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return
        self._snapshot_seq = self.state.seq  # no second snapshot until this many more events

        async def take() -> None:
            try:
                await self.snapshot()
            except Exception as exc:  # a missing snapshot only costs replay time
                log.warning("snapshot failed: %s", exc)

        self._snapshot_task = asyncio.get_running_loop().create_task(take())

    # ------------------------------------------------------------------ sweeps

    def sweep_runtime(self, sweep_id: str) -> _SweepRuntime:
        runtime = self._sweeps.get(sweep_id)
        if runtime is None:
            sweep = self.state.sweep(sweep_id)
            # Lenient: a config accepted earlier must keep working even if a later version of
            # the core would reject one of its keys.
            runtime = _SweepRuntime(parse_config(sweep.config, strict=False))
            self._sweeps[sweep_id] = runtime
        return runtime

    def _grid(self, runtime: _SweepRuntime) -> Grid:
        if runtime.grid is None:
            runtime.grid = Grid(runtime.config.space)
        return runtime.grid

    def _new_sweep_id(self) -> str:
        while True:
            sweep_id = "".join(secrets.choice(SWEEP_ID_ALPHABET) for _ in range(SWEEP_ID_LENGTH))
            if sweep_id not in self.state.sweeps:
                return sweep_id

    async def create_sweep(self, config_text: str, seed: int = 0) -> Sweep:
        """Validate a config (YAML or JSON text) and create a RUNNING sweep."""
        size = len(config_text.encode("utf-8", errors="replace"))
        if size > MAX_CONFIG_BYTES:
            raise ConfigError([Problem("", f"config is {size} bytes; the limit is "
                                           f"{MAX_CONFIG_BYTES} bytes")])
        if not config_text.strip():
            raise ConfigError([Problem("", "config is empty")])
        config = parse_config(parse_yaml(config_text))
        if seed < 0:
            raise InvalidRequestError(f"seed must be non-negative (got {seed})")
        seed = seed or secrets.randbits(63)
        sweep_id = self._new_sweep_id()
        metric = config.metric
        event = ev.SweepCreated(
            time=self.clock(), sweep_id=sweep_id, config=config.raw, seed=seed,
            method=config.method, name=config.name or "", grid_size=config.grid_size,
            run_cap=config.run_cap, metric_name=metric.name if metric else "",
            metric_goal=metric.goal if metric else "",
            metric_target=metric.target if metric else None,
            warnings=list(config.warnings),
        )
        self._sweeps[sweep_id] = _SweepRuntime(config)
        await self.record(event)
        log.info("sweep %s created (%s, %s)", sweep_id, config.method,
                 f"{config.expected_run_count} runs" if config.expected_run_count is not None
                 else "unbounded")
        return self.state.sweeps[sweep_id]

    async def pause(self, sweep_id: str) -> Sweep:
        sweep = self.state.sweep(sweep_id)
        self._not_final(sweep, "pause")
        if sweep.state == SWEEP_RUNNING:
            await self.record(ev.SweepPaused(time=self.clock(), sweep_id=sweep_id,
                                             reason="paused by a user"))
        else:
            await self.consistent()
        return sweep

    async def resume(self, sweep_id: str) -> Sweep:
        sweep = self.state.sweep(sweep_id)
        self._not_final(sweep, "resume")
        if sweep.state == SWEEP_PAUSED:
            self.record(ev.SweepResumed(time=self.clock(), sweep_id=sweep_id,
                                        reason="resumed by a user"))
            self._finish_if_done(sweep)
        await self.consistent()
        return sweep

    async def stop(self, sweep_id: str) -> Sweep:
        sweep = self.state.sweep(sweep_id)
        self._not_final(sweep, "stop")
        await self.record(ev.SweepStopped(time=self.clock(), sweep_id=sweep_id,
                                          reason="stopped by a user"))
        return sweep

    async def cancel(self, sweep_id: str) -> Sweep:
        """Cancel from any state but cancelled; every running run is told to stop."""
        sweep = self.state.sweep(sweep_id)
        if sweep.state == SWEEP_CANCELLED:
            raise PreconditionError(f"sweep {sweep_id} is already cancelled")
        self.record(ev.SweepCancelled(time=self.clock(), sweep_id=sweep_id,
                                      reason="cancelled by a user"))
        self._stop_runs([r.id for r in self.running(sweep)], "sweep cancelled")
        await self.consistent()
        return sweep

    def _not_final(self, sweep: Sweep, action: str) -> None:
        if sweep.state in SWEEP_FINAL:
            reason = f" ({sweep.state_reason})" if sweep.state_reason else ""
            raise PreconditionError(f"cannot {action} sweep {sweep.id}: it is {sweep.state}"
                                    f"{reason}")

    def running(self, sweep: Sweep) -> list[Any]:
        runs = self.state.runs
        return [runs[r] for r in sweep.run_ids if runs[r].state == RUN_RUNNING]

    def _finish_if_done(self, sweep: Sweep) -> asyncio.Future[int] | None:
        reason = finish_reason(sweep)
        if reason is None:
            return None
        log.info("sweep %s finished: %s", sweep.id, reason)
        return self.record(ev.SweepFinished(time=self.clock(), sweep_id=sweep.id, reason=reason))

    def run_records(self, sweep: Sweep, copy: bool = False) -> list[RunRecord]:
        """The engine's view of a sweep's runs (``copy`` for use outside the event loop).

        No records: the engine reads a run's metrics only through the summary, the sweep
        metric's best and, for hyperband, its values in order, which is what the State keeps.

        ``copy``: private copies, as :class:`SharedRunRecord` objects kept per run and made
        again only when the run has changed (its state, or metrics folded in). The engine
        remembers what it derived from such a record by its identity, so a bayes suggestion at
        1,000 runs reads only the runs that changed since the last one: new records for every
        run on every call cost ~4 ms more (~12 against ~8 ms on the ML-like space)."""
        runs = self.state.runs
        name = sweep.metric_name
        tracks = sweep.tracks_iterations and bool(name)
        if copy:
            kept = self.sweep_runtime(sweep.id).records
            shared: list[RunRecord] = []
            for run_id in sweep.run_ids:
                run = runs[run_id]
                # Everything the record holds changes only with these (params never change;
                # the summary, best and values only when new metric records are folded in).
                made_of = (run.state, run.metric_count, run.next_metric_seq, run.best_metric)
                entry = kept.get(run_id)
                if entry is None or entry[0] != made_of:
                    entry = kept[run_id] = (made_of, self._record(run, name, tracks, True))
                shared.append(entry[1])
            return shared
        return [self._record(runs[run_id], name, tracks, False) for run_id in sweep.run_ids]

    @staticmethod
    def _record(run: Any, name: str, tracks: bool, copy: bool) -> RunRecord:
        kind = SharedRunRecord if copy else RunRecord
        summary = dict(run.summary) if copy else run.summary
        record = kind(id=run.id, params=run.params, state=run.state, summary=summary)
        if tracks:
            record.metric_values[name] = list(run.metric_values) if copy else run.metric_values
        if name and run.best_metric is not None:
            record.best[name] = run.best_metric
        return record

    # ------------------------------------------------------------------ agents

    async def register_agent(self, sweep_id: str, hostname: str, pid: int) -> str:
        if not sweep_id:
            raise InvalidRequestError("sweep_id is required")
        sweep = self.state.sweep(sweep_id)
        agent_id = f"agent-{len(self.state.agents) + 1:04d}"
        while agent_id in self.state.agents:  # pragma: no cover - ids only grow
            agent_id += "x"
        self._last_seen[agent_id] = time.monotonic()
        await self.record(ev.AgentRegistered(time=self.clock(), sweep_id=sweep.id,
                                             agent_id=agent_id, hostname=hostname[:MAX_NAME_CHARS],
                                             pid=pid))
        log.info("agent %s registered for sweep %s (%s pid %d)", agent_id, sweep_id,
                 hostname, pid)
        return agent_id

    def active_agent(self, agent_id: str) -> Any:
        agent = self.state.agent(agent_id)
        if agent.state != AGENT_ACTIVE:
            raise NotFoundError(f"agent {agent_id} is {agent.state} ({agent.reason}); "
                                "register again")
        return agent

    def touch(self, agent_id: str) -> None:
        self._last_seen[agent_id] = time.monotonic()

    def hello(self, agent_id: str, running_ids: Iterable[str],
              link: AgentLink) -> list[tuple[str, str]]:
        """An agent (re)connected: crash the runs it no longer has. Returns the stops still
        owed to the runs it kept, as (run id, reason), for the caller to push after its
        Welcome: the agent reads Welcome first on every stream."""
        agent = self.active_agent(agent_id)
        old = self._links.get(agent_id)
        if old is not None and old is not link:
            old.close("the agent connected again")
        self._links[agent_id] = link
        self.touch(agent_id)
        listed = set(running_ids)
        now = self.clock()
        owed: list[tuple[str, str]] = []
        for run_id in sorted(agent.running):
            run = self.state.runs[run_id]
            if run_id not in listed:
                self.record(ev.RunCrashed(time=now, sweep_id=run.sweep_id, run_id=run_id,
                                          reason=f"agent {agent_id} reconnected without it"))
                self._finish_if_done(self.state.sweeps[run.sweep_id])
            elif run.stop_reason is not None:
                owed.append((run_id, run.stop_reason))
        return owed

    def disconnected(self, agent_id: str, link: AgentLink) -> None:
        if self._links.get(agent_id) is link:
            del self._links[agent_id]

    def agent_left(self, agent_id: str, reason: str) -> asyncio.Future[int]:
        agent = self.state.agent(agent_id)
        if agent.state != AGENT_ACTIVE:
            return self.durable_now()
        now = self.clock()
        self.record(ev.AgentLeft(time=now, sweep_id=agent.sweep_id, agent_id=agent_id,
                                 reason=reason[:1000] or "the agent left"))
        self._crash_runs_of(agent, f"agent {agent_id} left while running it")
        self._last_seen.pop(agent_id, None)
        log.info("agent %s left: %s", agent_id, reason)
        return self.durable_now()

    def _crash_runs_of(self, agent: Any, reason: str) -> None:
        now = self.clock()
        for run_id in sorted(agent.running):
            run = self.state.runs[run_id]
            self.record(ev.RunCrashed(time=now, sweep_id=run.sweep_id, run_id=run_id,
                                      reason=reason))
            self._finish_if_done(self.state.sweeps[run.sweep_id])

    def lose_silent_agents(self, now_monotonic: float) -> list[str]:
        """Mark every active agent silent for longer than the timeout lost (and its runs
        crashed); returns their ids."""
        timeout = self.settings.timeout
        lost = []
        for agent_id, seen in list(self._last_seen.items()):
            if now_monotonic - seen <= timeout:
                continue
            agent = self.state.agents.get(agent_id)
            del self._last_seen[agent_id]
            if agent is None or agent.state != AGENT_ACTIVE:
                continue
            reason = f"no message for {now_monotonic - seen:.1f} s (timeout {timeout:g} s)"
            log.warning("agent %s lost: %s; crashing its runs %s", agent_id, reason,
                        sorted(agent.running))
            self.record(ev.AgentLost(time=self.clock(), sweep_id=agent.sweep_id,
                                     agent_id=agent_id, reason=reason))
            self._crash_runs_of(agent, f"agent {agent_id} lost: {reason}")
            link = self._links.pop(agent_id, None)
            if link is not None:
                link.close("agent declared lost")
            lost.append(agent_id)
        return lost

    async def _monitor_loop(self) -> None:
        period = max(0.02, min(self.settings.heartbeat_interval, self.settings.timeout) / 4)
        while True:
            await asyncio.sleep(period)
            try:
                self.lose_silent_agents(time.monotonic())
            except OpensweepError as exc:  # the log failed; the server is shutting down
                log.error("heartbeat monitor: %s", exc)
                return

    # ------------------------------------------------------------------ runs

    async def request_run(self, agent_id: str) -> tuple[Assignment | NoWork, asyncio.Future[int]]:
        """Decide the agent's next run; the future resolves when the decision is durable."""
        agent = self.active_agent(agent_id)
        self.touch(agent_id)
        sweep = self.state.sweep(agent.sweep_id)
        runtime = self.sweep_runtime(sweep.id)
        if sweep.method != "bayes":
            # Decided and recorded without awaiting anything, so no other decision about the
            # sweep can come in between: no lock to take.
            return self._decide_now(agent_id, sweep, runtime)
        async with runtime.lock:
            return await self._decide_bayes(agent_id, sweep, runtime)

    def _decide_now(self, agent_id: str, sweep: Sweep,
                    runtime: _SweepRuntime) -> tuple[Assignment | NoWork, asyncio.Future[int]]:
        """A grid or random decision."""
        blocked = self._blocked(sweep)
        if blocked is not None:
            return blocked, self.durable_now()
        run_index = len(sweep.run_ids)
        seed = derive_seed(sweep.seed, run_index)
        if sweep.method == "grid":
            grid_index = next_grid_index(sweep)
            if grid_index is None:
                return NoWork(False, HELD_RETRY_SECONDS,
                              f"every remaining grid point of sweep {sweep.id} is held by a "
                              "running run; one may fail and be handed out again"), \
                    self.durable_now()
            return self._assign(agent_id, sweep, runtime, run_index, seed,
                                self._grid(runtime).point(grid_index), grid_index)
        return self._assign(agent_id, sweep, runtime, run_index, seed,
                            sample_random(runtime.config.space, seed), None)

    async def _decide_bayes(self, agent_id: str, sweep: Sweep, runtime: _SweepRuntime
                            ) -> tuple[Assignment | NoWork, asyncio.Future[int]]:
        """A bayes decision: computed in a thread while holding the sweep's lock, so the next
        decision sees the run this one creates."""
        blocked = self._blocked(sweep)
        if blocked is not None:
            return blocked, self.durable_now()
        run_index = len(sweep.run_ids)
        seed = derive_seed(sweep.seed, run_index)
        records = self.run_records(sweep, copy=True)
        flat = await asyncio.to_thread(_engine_suggestion, runtime.config, records, seed)
        # The world may have moved while we computed.
        self.active_agent(agent_id)
        blocked = self._blocked(sweep)
        if blocked is not None:
            return blocked, self.durable_now()
        if flat is None:
            return NoWork(True, 0.0, "the search method has nothing left"), self.durable_now()
        return self._assign(agent_id, sweep, runtime, run_index, seed, flat, None)

    def _assign(self, agent_id: str, sweep: Sweep, runtime: _SweepRuntime, run_index: int,
                seed: int, flat: dict[Any, Any], grid_index: int | None
                ) -> tuple[Assignment, asyncio.Future[int]]:
        """Record the run that hands ``flat`` to the agent."""
        config = runtime.config
        params = config.space.nest(flat)
        run_id = run_id_for(sweep.id, run_index)
        durable = self.record(ev.RunAssigned(
            time=self.clock(), sweep_id=sweep.id, run_id=run_id, run_index=run_index,
            agent_id=agent_id, params=params, grid_index=grid_index, suggestion_seed=seed))
        return Assignment(run_id, sweep.id, params, config.program or "",
                          tuple(config.command or ())), durable

    def _blocked(self, sweep: Sweep) -> NoWork | None:
        """Why nothing can be handed out now, or None."""
        if sweep.state == SWEEP_PAUSED:
            return NoWork(False, PAUSED_RETRY_SECONDS, f"sweep {sweep.id} is paused")
        if sweep.state not in SWEEP_FINAL:
            self._finish_if_done(sweep)
        if sweep.state in SWEEP_FINAL:
            reason = f": {sweep.state_reason}" if sweep.state_reason else ""
            return NoWork(True, 0.0, f"sweep {sweep.id} is {sweep.state}{reason}")
        if cap_reached(sweep):
            running = sweep.counts[RUN_RUNNING]
            return NoWork(True, 0.0, f"sweep {sweep.id} reached its run_cap of {sweep.run_cap} "
                                     f"runs ({running} still running)")
        return None

    def run_started(self, run_id: str, pid: int) -> asyncio.Future[int]:
        run = self.state.runs.get(run_id)
        if run is None or run.state != RUN_RUNNING or run.started_at is not None:
            return self.durable_now()
        return self.record(ev.RunStarted(time=self.clock(), sweep_id=run.sweep_id,
                                         run_id=run_id, pid=pid))

    def log_metrics(self, run_id: str, records: Sequence[dict[str, Any]]
                    ) -> tuple[int, asyncio.Future[int]]:
        """Record the records not seen before; returns (the run's next expected seq, durable).

        Early termination is decided right here, as the metrics arrive: each stop is an event
        and is pushed to the run's agent as soon as it is durable.
        """
        if len(records) > MAX_RECORDS_PER_BATCH:
            raise InvalidRequestError(f"a MetricsBatch holds at most {MAX_RECORDS_PER_BATCH} "
                                      f"records (got {len(records)})")
        run = self.state.runs.get(run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id!r}")
        fresh: dict[int, dict[str, Any]] = {}
        for record in records:
            seq = record["seq"]
            if seq < 0:
                raise InvalidRequestError(f"run {run_id}: metric record seq must be >= 0 "
                                          f"(got {seq})")
            if len(record["values"]) > MAX_METRICS_PER_RECORD:
                raise InvalidRequestError(f"run {run_id}: a metric record holds at most "
                                          f"{MAX_METRICS_PER_RECORD} values")
            if seq >= run.next_metric_seq:
                fresh[seq] = record
        if not fresh:
            return run.next_metric_seq, self.durable_now()
        ordered = [fresh[s] for s in sorted(fresh)]
        sweep = self.state.sweeps[run.sweep_id]
        config = self.sweep_runtime(sweep.id).config
        before = len(run.metric_values)
        durable = self.record(ev.MetricsLogged.from_records(
            time=self.clock(), sweep_id=run.sweep_id, run_id=run_id, records=ordered))
        if _crosses_bracket(config, before, len(run.metric_values)):
            self._early_terminate(sweep, config)
        finished = self._finish_if_done(sweep)
        return run.next_metric_seq, finished or durable

    async def run_metrics(self, run_id: str, from_seq: int, limit: int) -> list[dict[str, Any]]:
        """The run's metric records with seq >= ``from_seq`` (at most ``limit``), read from the
        log once everything folded so far is durable (so an acknowledged record is there)."""
        run = self.state.run(run_id)
        await self.consistent()
        events = await self.store.read_run_metrics(run.id)
        return metric_records([e for e in events if isinstance(e, ev.MetricsLogged)],
                              from_seq, limit)

    def _early_terminate(self, sweep: Sweep, config: SweepConfig) -> None:
        runs = self.state.runs
        decisions = hyperband.decide(config, self.run_records(sweep))
        for decision in decisions:
            run = runs[decision.run_id]
            if run.state != RUN_RUNNING or run.stop_reason is not None:
                continue
            assert config.metric is not None
            reason = (f"stopped by hyperband at iteration {decision.bracket}: "
                      f"{config.metric.name} {decision.value:g} is worse than the band's "
                      f"threshold {decision.threshold:g}")
            self._stop_runs([run.id], reason)

    def _stop_runs(self, run_ids: Sequence[str], reason: str) -> None:
        runs = self.state.runs
        for run_id in run_ids:
            run = runs[run_id]
            durable = self.record(ev.RunStopRequested(time=self.clock(), sweep_id=run.sweep_id,
                                                      run_id=run_id, reason=reason))
            link = self._links.get(run.agent_id)
            if link is not None:
                link.push_stop(run_id, reason, durable)
            log.info("run %s: stop requested (%s)", run_id, reason)

    def run_ended(self, run_id: str, state: str, exit_code: int | None,
                  reason: str) -> asyncio.Future[int]:
        """The agent's report of a run's end; a repeat (or a run already crashed) changes
        nothing."""
        if state not in RUN_END_STATES:
            raise InvalidRequestError(f"run {run_id}: RunEnded.state must be FINISHED, FAILED "
                                      f"or STOPPED (got {state!r})")
        run = self.state.runs.get(run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id!r}")
        if run.state != RUN_RUNNING:
            return self.durable_now()
        durable = self.record(ev.RunEnded(time=self.clock(), sweep_id=run.sweep_id,
                                          run_id=run_id, state=state, exit_code=exit_code,
                                          reason=reason[:2000]))
        finished = self._finish_if_done(self.state.sweeps[run.sweep_id])
        return finished or durable


def _crosses_bracket(config: SweepConfig, before: int, after: int) -> bool:
    """True when a batch took a run's count of metric values from ``before`` past a hyperband
    bracket. Stop decisions can only change then: a bracket's threshold moves only when a run
    reaches it, and between brackets a run's own value can only improve (W&B's non-strict rule
    uses its best so far; the strict one a value already logged). So the engine is asked at
    each crossing, not on every batch (with 1,000 runs of 100 records one question costs
    ~0.2 s)."""
    settings = config.early_terminate
    if settings is None or config.metric is None or after == before:
        return False
    return any(before < b <= after for b in hyperband.brackets_up_to(settings, after))


def _engine_suggestion(config: SweepConfig, runs: Sequence[RunRecord],
                       seed: int) -> dict[Any, Any] | None:
    """``engine.next_suggestion``, imported on first use: the engine pulls in scipy, which
    would add seconds to every controller start while only bayes sweeps need it."""
    from controller.core import engine

    return engine.next_suggestion(config, runs, seed)


async def load_state(store: EventStore) -> State:
    """The State at the end of the log: newest usable snapshot, then the events after it.

    The cyclic garbage collector is off meanwhile and the result is frozen (``gc.freeze``):
    a replay allocates millions of dicts and lists that all stay alive, and each full collection
    would walk every one of them again (60% of a 1,000,000-event replay's CPU); after the
    freeze, later collections skip the rebuilt state (it holds no reference cycles to free).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        state = await _load_state(store)
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    return state


async def _load_state(store: EventStore) -> State:
    state: State | None = None
    snap = await store.load_latest_snapshot(SNAPSHOT_FORMAT)
    if snap is not None:
        seq, text = snap
        try:
            state = State.from_json(loads_exact(text))
        except Exception as exc:  # any unusable snapshot only costs a full replay
            log.warning("snapshot at seq %d is unusable (%s); replaying the whole log", seq, exc)
            state = None
    start = time.monotonic()
    base = state.seq if state is not None else 0
    state = state if state is not None else State()
    async for chunk in store.read_stored(base, lean=True):
        first = state.seq
        try:
            fold_stored(state, chunk)
        except ev.EventDecodeError as exc:
            row = chunk[state.seq - first]
            type_name, version = (row[:2] if type(row) is tuple
                                  else (ev.MetricsLogged.TYPE, ev.MetricsLogged.VERSION))
            raise unreadable(state.seq + 1, type_name, version, exc) from None
        del chunk  # freed now, while its objects are still in the cache
    if state.seq != store.last_seq:
        raise StoreError(f"the event log has gaps: folded {state.seq} events but the last seq "
                         f"is {store.last_seq}")
    log.info("state rebuilt from %s: %d events replayed in %.2f s (seq %d)",
             f"snapshot at seq {base}" if base else "the start of the log",
             state.seq - base, time.monotonic() - start, state.seq)
    return state
