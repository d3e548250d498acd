"""The controller's state: a pure fold over its events.

``State`` holds sweeps, runs (with what their metrics imply: the summary, the best value, the
sweep metric's values), agents and each grid sweep's bookkeeping (cursor, points to re-serve,
points held by running runs). It changes
only through :func:`apply`, one event at a time, in log order; nothing here reads a clock, draws
a random number or touches a file, so folding the same events always gives an equal state, and
folding the first ``n`` events gives the state the controller had at sequence number ``n``.

``apply`` mutates the State it is given (a persistent structure would cost too much when a
million metric events are replayed); callers that need an older state fold a prefix again or
load a snapshot (:meth:`State.to_json` / :meth:`State.from_json`, plain JSON, never pickle).

The metric records themselves are not in the State: they are in the log, once, and are read
from it per run when asked for (the store indexes them by run). The State keeps only what
decisions and views need, so it stays small enough to snapshot and load in well under a second
for a million events: per run the record count, the last value of every metric (the summary),
the best value of the sweep's metric and its finite values in order (hyperband's iterations).

The query helpers at the end (``next_grid_index``, ``finish_reason``, ...) are the pure half of
the controller's decisions: the service asks them what to do and records the answer as events.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, Protocol

from controller.core import events as ev
from controller.core.errors import OpensweepError
from controller.core.runs import is_metric_value

SWEEP_RUNNING = "running"
SWEEP_PAUSED = "paused"
SWEEP_FINISHED = "finished"
SWEEP_STOPPED = "stopped"
SWEEP_CANCELLED = "cancelled"
SWEEP_FINAL = frozenset({SWEEP_FINISHED, SWEEP_STOPPED, SWEEP_CANCELLED})

RUN_RUNNING = "running"
RUN_FINISHED = "finished"
RUN_FAILED = "failed"
RUN_CRASHED = "crashed"
RUN_STOPPED = "stopped"
RUN_STATES = (RUN_RUNNING, RUN_FINISHED, RUN_FAILED, RUN_CRASHED, RUN_STOPPED)
RUN_END_STATES = frozenset({RUN_FINISHED, RUN_FAILED, RUN_STOPPED})
"""States an agent may report in RunEnded (crashed is the controller's verdict)."""

AGENT_ACTIVE = "active"
AGENT_LOST = "lost"
AGENT_LEFT = "left"

SNAPSHOT_FORMAT = 2
"""Bump when the shape of State changes; a snapshot of another format is ignored (full replay)."""


class NotFoundError(OpensweepError):
    """No sweep, run or agent with that id."""


class PreconditionError(OpensweepError):
    """The request is valid but not in the current state (e.g. resuming a cancelled sweep)."""


class EventOrderError(OpensweepError):
    """An event that cannot follow the state it is applied to (a corrupt or foreign log)."""


@dataclass
class Run:
    """One run. ``metric_count`` records were stored for it (the records are in the log);
    ``summary`` is the last value of every metric it logged; ``best_metric`` the best finite
    value of the sweep's metric per its goal; ``metric_values`` all those finite values in
    logging order (value i is hyperband's iteration i + 1), kept only when the sweep has
    ``early_terminate`` (:attr:`Sweep.tracks_iterations`): nothing else needs them."""

    id: str
    sweep_id: str
    index: int
    agent_id: str
    params: dict[str, Any]
    grid_index: int | None
    suggestion_seed: int
    created_at: float
    state: str = RUN_RUNNING
    started_at: float | None = None
    pid: int | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    reason: str = ""
    stop_reason: str | None = None
    next_metric_seq: int = 0
    metric_count: int = 0
    metric_values: list[float] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)
    best_metric: float | None = None


@dataclass
class Sweep:
    """One sweep; ``counts`` is runs by state; grid fields are meaningful for ``method: grid``.

    Grid bookkeeping: ``grid_cursor`` is the lowest index never handed out; ``grid_retry`` the
    points to hand out again (their first run failed or crashed), oldest first;
    ``grid_retried`` every point ever put in ``grid_retry`` (each is re-served once at most);
    ``grid_held`` point -> the running run holding it. ``tracks_iterations``: the config has
    ``early_terminate``, so its runs keep their metric values in order (hyperband's input).
    """

    id: str
    config: dict[str, Any]
    seed: int
    method: str
    name: str
    grid_size: int | None
    run_cap: int | None
    metric_name: str
    metric_goal: str
    metric_target: float | None
    warnings: list[str]
    created_at: float
    state: str = SWEEP_RUNNING
    state_reason: str = ""
    run_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RUN_STATES, 0))
    best_run_id: str | None = None
    best_metric: float | None = None
    grid_cursor: int = 0
    grid_retry: list[int] = field(default_factory=list)
    grid_retried: set[int] = field(default_factory=set)
    grid_held: dict[int, str] = field(default_factory=dict)
    agent_ids: list[str] = field(default_factory=list)
    tracks_iterations: bool = False


@dataclass
class Agent:
    id: str
    sweep_id: str
    hostname: str
    pid: int
    registered_at: float
    state: str = AGENT_ACTIVE
    reason: str = ""
    running: set[str] = field(default_factory=set)


@dataclass
class State:
    """Everything the controller knows; ``seq`` is the number of events folded so far."""

    seq: int = 0
    sweeps: dict[str, Sweep] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)

    # ------------------------------------------------------------------ lookups

    def sweep(self, sweep_id: str) -> Sweep:
        sweep = self.sweeps.get(sweep_id)
        if sweep is None:
            raise NotFoundError(f"no sweep {sweep_id!r}")
        return sweep

    def run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id!r}")
        return run

    def agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise NotFoundError(f"no agent {agent_id!r}")
        return agent

    def sweep_runs(self, sweep_id: str) -> list[Run]:
        return [self.runs[r] for r in self.sweep(sweep_id).run_ids]

    # ------------------------------------------------------------------ snapshots

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict from which :meth:`from_json` rebuilds an equal State.

        Every container the fold mutates is copied (shallowly), so the dict can be serialised
        later, or in another thread, while events keep being applied to this State. Runs (the
        bulk: one per run ever made) are lists of their field values in ``run_fields`` order,
        not dicts: half the text, and rebuilt positionally."""
        return {
            "format": SNAPSHOT_FORMAT,
            "seq": self.seq,
            "sweeps": [_sweep_to_json(s) for s in self.sweeps.values()],
            "run_fields": list(_RUN_FIELDS),
            "runs": [_run_to_json(r) for r in self.runs.values()],
            "agents": [_agent_to_json(a) for a in self.agents.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        """The State of :meth:`to_json`; EventOrderError for another snapshot format."""
        if data.get("format") != SNAPSHOT_FORMAT:
            raise EventOrderError(f"snapshot format {data.get('format')!r} is not supported")
        if data.get("run_fields") != list(_RUN_FIELDS):
            raise EventOrderError(f"snapshot run fields {data.get('run_fields')!r} are not "
                                  f"{list(_RUN_FIELDS)}")
        state = cls(seq=int(data["seq"]))
        for s in data["sweeps"]:
            sweep = Sweep(**{**s, "grid_retried": set(s["grid_retried"]), "grid_held": {
                int(k): v for k, v in s["grid_held"].items()}})
            state.sweeps[sweep.id] = sweep
        runs = state.runs
        for values in data["runs"]:
            run = Run(*values)
            runs[run.id] = run
        for a in data["agents"]:
            state.agents[a["id"]] = Agent(**{**a, "running": set(a["running"])})
        return state


def _sweep_to_json(s: Sweep) -> dict[str, Any]:
    out = dict(s.__dict__)
    out["run_ids"] = list(s.run_ids)
    out["counts"] = dict(s.counts)
    out["grid_retry"] = list(s.grid_retry)
    out["grid_retried"] = sorted(s.grid_retried)
    out["grid_held"] = {str(k): v for k, v in s.grid_held.items()}
    out["agent_ids"] = list(s.agent_ids)
    return out


_RUN_FIELDS = tuple(f.name for f in fields(Run))
_RUN_VALUES = operator.attrgetter(*_RUN_FIELDS)
_RUN_VALUES_AT = _RUN_FIELDS.index("metric_values")
_RUN_SUMMARY_AT = _RUN_FIELDS.index("summary")


def _run_to_json(r: Run) -> list[Any]:
    out = list(_RUN_VALUES(r))
    # Copies of what the fold mutates, so the result stays the state at this seq while
    # folding goes on.
    out[_RUN_VALUES_AT] = list(r.metric_values)
    out[_RUN_SUMMARY_AT] = dict(r.summary)
    return out


def _agent_to_json(a: Agent) -> dict[str, Any]:
    out = dict(a.__dict__)
    out["running"] = sorted(a.running)
    return out


# ---------------------------------------------------------------------------- the fold

_Handler = Callable[["State", float, dict[str, Any]], None]
"""A fold step: the state, the event's time and its data (:meth:`Event.to_data`)."""


def fold(events: Iterable[ev.Event], state: State | None = None) -> State:
    """Apply ``events`` in order to ``state`` (a new empty State when None) and return it."""
    state = state if state is not None else State()
    handlers = _HANDLERS
    for event in events:
        handlers[event.TYPE](state, event.time, event.to_data())
        state.seq += 1
    return state


def apply(state: State, event: ev.Event, data: dict[str, Any] | None = None) -> None:
    """Fold one event into ``state`` (in place) and advance ``state.seq`` by one.

    ``data`` is ``event.to_data()`` when the caller has it already (it encodes the event too)."""
    _HANDLERS[event.TYPE](state, event.time, event.to_data() if data is None else data)
    state.seq += 1


class LeanMetricsLogged(Protocol):
    """A current-version ``MetricsLogged`` as a store may hand it to :func:`fold_stored`: its
    ``run_id``, ``seqs`` and ``values`` columns (the event's fields of those names); the store
    has checked that the event's fields are exactly the type's. Replay reads three of four
    events in this shape, with nothing made for what the fold does not read."""

    run_id: str
    seqs: Sequence[int]
    values: dict[str, Sequence[Any]]


class LeanMetricsLoggedV1(Protocol):
    """A version 1 ``MetricsLogged`` as a store may hand it to :func:`fold_stored` (as the
    data of its row): its ``run_id`` and ``records``, each with ``seq`` and ``values``, checked
    by the store to have exactly the type's fields and what the upcast to version 2 requires
    (so folding its records one by one is folding its upcast)."""

    run_id: str
    records: Sequence[Any]


def fold_stored(state: State, rows: Iterable[Any]) -> None:
    """Fold events as stored, without making Event objects: each row is a ``(type, version,
    time, data)`` tuple with ``data`` a dict of the event's fields (or, for a version 1
    ``MetricsLogged``, possibly a :class:`LeanMetricsLoggedV1`), or, for a current-version
    ``MetricsLogged``, a :class:`LeanMetricsLogged` alone.

    Replay's hot path: a current-version row whose fields are exactly its type's goes straight
    to the handler (the same check ``events.decode`` makes, which is all it checks); anything
    else (an older version to upcast, a bad row) goes through ``events.decode`` and fails or
    folds exactly as a decoded event would. EventDecodeError for a row that cannot be read."""
    handlers = _HANDLERS
    fields = _FIELDSETS
    fold_columns = _fold_metric_columns
    for row in rows:
        if type(row) is not tuple:
            fold_columns(state, row.run_id, row.seqs, row.values)
            state.seq += 1
            continue
        type_name, version, time, data = row
        if type(data) is not dict:
            if type_name != _METRICS or version != 1:
                raise ev.EventDecodeError(f"{type_name} v{version}: not a dict of fields")
            _fold_metrics(state, data.run_id, data.records)
            state.seq += 1
            continue
        known = fields.get(type_name)
        if known is None or version != known[0] or data.keys() != known[1]:
            event = ev.decode(type_name, version, time, data)
            time, data = event.time, event.to_data()
        handlers[type_name](state, time, data)
        state.seq += 1


def _sweep_created(state: State, time: float, d: dict[str, Any]) -> None:
    if d["sweep_id"] in state.sweeps:
        raise EventOrderError(f"sweep {d['sweep_id']} created twice")
    state.sweeps[d["sweep_id"]] = Sweep(
        id=d["sweep_id"],
        config=d["config"],
        seed=d["seed"],
        method=d["method"],
        name=d["name"],
        grid_size=d["grid_size"],
        run_cap=d["run_cap"],
        metric_name=d["metric_name"],
        metric_goal=d["metric_goal"],
        metric_target=d["metric_target"],
        warnings=list(d["warnings"]),
        created_at=time,
        tracks_iterations=isinstance(d["config"], dict) and "early_terminate" in d["config"],
    )


def _set_sweep_state(new_state: str) -> _Handler:
    def handler(state: State, time: float, d: dict[str, Any]) -> None:
        sweep = state.sweep(d["sweep_id"])
        sweep.state = new_state
        sweep.state_reason = "" if new_state == SWEEP_RUNNING else d["reason"]

    return handler


def _agent_registered(state: State, time: float, d: dict[str, Any]) -> None:
    agent = state.agents.get(d["agent_id"])
    if agent is None:
        state.agents[d["agent_id"]] = Agent(
            id=d["agent_id"], sweep_id=d["sweep_id"], hostname=d["hostname"], pid=d["pid"],
            registered_at=time,
        )
        state.sweep(d["sweep_id"]).agent_ids.append(d["agent_id"])
    else:
        agent.state = AGENT_ACTIVE
        agent.reason = ""
        agent.hostname = d["hostname"]
        agent.pid = d["pid"]


def _agent_gone(new_state: str) -> _Handler:
    def handler(state: State, time: float, d: dict[str, Any]) -> None:
        agent = state.agent(d["agent_id"])
        agent.state = new_state
        agent.reason = d["reason"]

    return handler


def _run_assigned(state: State, time: float, d: dict[str, Any]) -> None:
    sweep = state.sweep(d["sweep_id"])
    if d["run_id"] in state.runs:
        raise EventOrderError(f"run {d['run_id']} assigned twice")
    index = d["grid_index"]
    if index is not None and index in sweep.grid_held:
        raise EventOrderError(f"grid point {index} of {sweep.id} handed out while held")
    run = Run(
        id=d["run_id"],
        sweep_id=d["sweep_id"],
        index=d["run_index"],
        agent_id=d["agent_id"],
        params=d["params"],
        grid_index=d["grid_index"],
        suggestion_seed=d["suggestion_seed"],
        created_at=time,
    )
    state.runs[run.id] = run
    sweep.run_ids.append(run.id)
    sweep.counts[RUN_RUNNING] += 1
    agent = state.agents.get(d["agent_id"])
    if agent is not None:
        agent.running.add(run.id)
    if index is not None:
        if index in sweep.grid_retry:
            sweep.grid_retry.remove(index)
        elif index >= sweep.grid_cursor:
            sweep.grid_cursor = index + 1
        sweep.grid_held[index] = run.id


def _run_started(state: State, time: float, d: dict[str, Any]) -> None:
    run = state.run(d["run_id"])
    run.started_at = time
    run.pid = d["pid"]


def _metrics_logged(state: State, time: float, d: dict[str, Any]) -> None:
    _fold_metric_columns(state, d["run_id"], d["seqs"], d["values"])


class _Record(NamedTuple):
    """A metric record as the per-record fold reads it."""

    seq: int
    values: dict[str, Any]


_METRICS = ev.MetricsLogged.TYPE
_FLOATS = {float}
_FLOATS_OR_NONE = {float, type(None)}
_isfinite = math.isfinite


def _fold_metric_columns(state: State, run_id: str, seqs: Sequence[int],
                         values: dict[str, Sequence[Any]]) -> None:
    """A MetricsLogged's columns into the run's summary: exactly what :func:`_fold_metrics`
    makes of the same records, faster.

    Replay's hottest code (three of four events in a busy log). The service writes each
    event's records in increasing seq order, all new, and metric values as floats; for such an
    event every record counts, the summary takes the last value of each column and the best
    value is the column's ``min`` or ``max``: a few C-level passes over lists instead of a dict
    per record. Anything else (a re-sent record, seqs out of order, a NaN, an infinity, an int
    or a bool in the sweep's metric column) is folded record by record, the reference rule.
    EventDecodeError when the columns' lengths differ (the State is then left half-changed:
    only a corrupt log holds such an event, and replay stops at it)."""
    run = state.runs.get(run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id!r}")
    sweep = state.sweeps[run.sweep_id]
    metric = values.get(sweep.metric_name) if sweep.metric_name else None
    following = run.next_metric_seq
    for seq in seqs:
        if seq < following:
            return _fold_metric_records(state, run_id, seqs, values)
        following = seq + 1
    if following == run.next_metric_seq:  # no records
        return _fold_metric_records(state, run_id, seqs, values)
    if metric is not None:
        kinds = set(map(type, metric))
        if kinds != _FLOATS:
            if kinds != _FLOATS_OR_NONE:  # an int, a bool or anything else: per record
                return _fold_metric_records(state, run_id, seqs, values)
            metric = [value for value in metric if value is not None]
        if not _isfinite(sum(metric)):
            return _fold_metric_records(state, run_id, seqs, values)
    n = len(seqs)
    summary = run.summary
    for name, column in values.items():
        if len(column) != n:
            raise _ragged(run_id, n)
        value = column[-1]
        if value is None:
            for value in reversed(column):
                if value is not None:
                    break
            else:
                continue
        summary[name] = value
    run.next_metric_seq = following
    run.metric_count += n
    if not metric:
        return
    if sweep.tracks_iterations:
        run.metric_values.extend(metric)
    best = run.best_metric
    if sweep.metric_goal == "maximize":
        value = max(metric)
        if best is None or value > best:
            run.best_metric = value
            current = sweep.best_metric
            if current is None or value > current:
                sweep.best_metric = value
                sweep.best_run_id = run.id
    else:
        value = min(metric)
        if best is None or value < best:
            run.best_metric = value
            current = sweep.best_metric
            if current is None or value < current:
                sweep.best_metric = value
                sweep.best_run_id = run.id


def _fold_metric_records(state: State, run_id: str, seqs: Sequence[int],
                         values: dict[str, Sequence[Any]]) -> None:
    n = len(seqs)
    if any(len(column) != n for column in values.values()):
        raise _ragged(run_id, n)
    _fold_metrics(state, run_id, _records(seqs, values))


def _ragged(run_id: str, n: int) -> ev.EventDecodeError:
    return ev.EventDecodeError(f"MetricsLogged of run {run_id}: every column must have one "
                               f"entry per record ({n} seqs)")


def _records(seqs: Sequence[int], values: dict[str, Sequence[Any]]) -> list[_Record]:
    """The records of metric columns (a name's None is left out of that record)."""
    columns = values.items()
    return [_Record(seq, {name: column[i] for name, column in columns
                          if column[i] is not None})
            for i, seq in enumerate(seqs)]


def _fold_metrics(state: State, run_id: str, records: Iterable[Any]) -> None:
    """Metric records (each with ``seq`` and ``values``) into the run's summary, one by one:
    the reference rule, which :func:`_fold_metric_columns` takes a short cut to whenever it
    can. A record whose seq is below one already counted is a re-send and is skipped; the
    summary is the last value of every name; only finite numbers (not bools) are the sweep
    metric's values, as floats."""
    run = state.runs.get(run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id!r}")
    sweep = state.sweeps[run.sweep_id]
    name = sweep.metric_name or None
    maximize = sweep.metric_goal == "maximize"
    update_summary = run.summary.update
    add_value = run.metric_values.append if sweep.tracks_iterations else None
    best = run.best_metric
    next_seq = run.next_metric_seq
    count = run.metric_count
    isfinite = math.isfinite
    for record in records:
        seq = record.seq
        if seq < next_seq:
            continue
        next_seq = seq + 1
        count += 1
        values = record.values
        update_summary(values)
        if name in values:
            value = values[name]
            # Floats (nearly every value) are checked inline; anything else as the engine does.
            if (isfinite(value) if type(value) is float else is_metric_value(value)):
                value = float(value)
                if add_value is not None:
                    add_value(value)
                if best is None or (value > best if maximize else value < best):
                    best = value
    run.next_metric_seq = next_seq
    run.metric_count = count
    if best is not None and best != run.best_metric:
        run.best_metric = best
        current = sweep.best_metric
        if current is None or (best > current if maximize else best < current):
            sweep.best_metric = best
            sweep.best_run_id = run.id




def metric_records(events: Iterable[ev.MetricsLogged], from_seq: int = 0,
                   limit: int | None = None) -> list[dict[str, Any]]:
    """The records of one run's ``MetricsLogged`` events (in log order) that the fold counted,
    with seq >= ``from_seq``, at most ``limit``, as ``{"seq", "step", "values", "time"}``
    dicts: what the run's metrics are, read back from the log, since the State keeps only
    their summary. The same rule as the fold: a record whose seq is below one already counted
    is a re-send and is skipped."""
    out: list[dict[str, Any]] = []
    next_seq = 0
    for event in events:
        for record in event.records:
            seq = record["seq"]
            if seq < next_seq:
                continue
            next_seq = seq + 1
            if seq >= from_seq:
                if limit is not None and len(out) >= limit:
                    return out
                out.append(record)
    return out


def _run_stop_requested(state: State, time: float, d: dict[str, Any]) -> None:
    state.run(d["run_id"]).stop_reason = d["reason"]


def _end_run(state: State, run: Run, new_state: str, time: float, reason: str) -> None:
    if run.state != RUN_RUNNING:
        raise EventOrderError(f"run {run.id} ended twice")
    sweep = state.sweeps[run.sweep_id]
    run.state = new_state
    run.ended_at = time
    run.reason = reason
    sweep.counts[RUN_RUNNING] -= 1
    sweep.counts[new_state] += 1
    agent = state.agents.get(run.agent_id)
    if agent is not None:
        agent.running.discard(run.id)
    index = run.grid_index
    if index is not None:
        if sweep.grid_held.get(index) == run.id:
            del sweep.grid_held[index]
        if new_state in (RUN_FAILED, RUN_CRASHED) and index not in sweep.grid_retried:
            sweep.grid_retried.add(index)
            sweep.grid_retry.append(index)


def _run_ended(state: State, time: float, d: dict[str, Any]) -> None:
    run = state.run(d["run_id"])
    if d["state"] not in RUN_END_STATES:
        raise EventOrderError(f"run {run.id} cannot end as {d['state']!r}")
    _end_run(state, run, d["state"], time, d["reason"])
    run.exit_code = d["exit_code"]


def _run_crashed(state: State, time: float, d: dict[str, Any]) -> None:
    _end_run(state, state.run(d["run_id"]), RUN_CRASHED, time, d["reason"])


_HANDLERS: dict[str, _Handler] = {
    ev.SweepCreated.TYPE: _sweep_created,
    ev.SweepPaused.TYPE: _set_sweep_state(SWEEP_PAUSED),
    ev.SweepResumed.TYPE: _set_sweep_state(SWEEP_RUNNING),
    ev.SweepStopped.TYPE: _set_sweep_state(SWEEP_STOPPED),
    ev.SweepCancelled.TYPE: _set_sweep_state(SWEEP_CANCELLED),
    ev.SweepFinished.TYPE: _set_sweep_state(SWEEP_FINISHED),
    ev.AgentRegistered.TYPE: _agent_registered,
    ev.AgentLost.TYPE: _agent_gone(AGENT_LOST),
    ev.AgentLeft.TYPE: _agent_gone(AGENT_LEFT),
    ev.RunAssigned.TYPE: _run_assigned,
    ev.RunStarted.TYPE: _run_started,
    ev.MetricsLogged.TYPE: _metrics_logged,
    ev.RunStopRequested.TYPE: _run_stop_requested,
    ev.RunEnded.TYPE: _run_ended,
    ev.RunCrashed.TYPE: _run_crashed,
}
assert set(_HANDLERS) == set(ev.BY_TYPE), "every event type needs a handler"
_FIELDSETS: dict[str, tuple[int, frozenset[str]]] = {
    cls.TYPE: (cls.VERSION, frozenset(cls.FIELDS)) for cls in ev.EVENT_TYPES}


# ---------------------------------------------------------------------------- decisions


def derive_seed(sweep_seed: int, run_index: int) -> int:
    """The suggestion seed of a sweep's ``run_index``-th run: a 63-bit hash of both, so runs
    get independent streams and replay reproduces them."""
    digest = hashlib.blake2b(f"{sweep_seed}:{run_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def run_id_for(sweep_id: str, run_index: int) -> str:
    """``<sweep id>-<index, 4 digits at least>``, e.g. ``k3v9x0qa-0007``."""
    return f"{sweep_id}-{run_index:04d}"


def cap_reached(sweep: Sweep) -> bool:
    return sweep.run_cap is not None and len(sweep.run_ids) >= sweep.run_cap


def next_grid_index(sweep: Sweep) -> int | None:
    """The grid point to hand out next: a point to re-serve first, else the cursor; None when
    every remaining point is held by a running run or the grid is exhausted."""
    if sweep.grid_retry:
        return sweep.grid_retry[0]
    if sweep.grid_size is not None and sweep.grid_cursor < sweep.grid_size:
        return sweep.grid_cursor
    return None


def target_reached(sweep: Sweep) -> bool:
    """True once some run's best value of the metric meets ``metric.target``."""
    if sweep.metric_target is None or sweep.best_metric is None:
        return False
    if sweep.metric_goal == "maximize":
        return sweep.best_metric >= sweep.metric_target
    return sweep.best_metric <= sweep.metric_target


def finish_reason(sweep: Sweep) -> str | None:
    """Why a RUNNING or PAUSED sweep is now finished, or None while it has work left.

    Grid: every point handed out and none held by a running run (a failed or crashed point
    waiting to be re-served is work left). run_cap: that many runs created and none of them
    still running (so the sweep's state says whether work is going on). Target: reached, at
    once (runs still going carry on, as in W&B).
    """
    if sweep.state in SWEEP_FINAL:
        return None
    if target_reached(sweep):
        return (
            f"metric target reached: {sweep.metric_name} = {sweep.best_metric:g} "
            f"(run {sweep.best_run_id}, target {sweep.metric_target:g})"
        )
    if cap_reached(sweep) and not sweep.counts[RUN_RUNNING]:
        return f"run_cap reached ({sweep.run_cap} runs)"
    if (
        sweep.method == "grid"
        and sweep.grid_size is not None
        and sweep.grid_cursor >= sweep.grid_size
        and not sweep.grid_retry
        and not sweep.grid_held
    ):
        return f"grid exhausted ({sweep.grid_size} points)"
    return None


def running_runs(state: State, sweep_id: str) -> list[Run]:
    return [r for r in state.sweep_runs(sweep_id) if r.state == RUN_RUNNING]
