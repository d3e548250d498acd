"""The controller's events: immutable, versioned facts, the only source of truth.

Every state change of the controller is one of these, appended to the log and then folded into
the state (:mod:`controller.core.state`). An event says what happened, never what to do; it
carries every value a decision used (the time, the seed of a suggestion, the parameters handed
out), so folding the log again reproduces the controller exactly, on any machine, with any
version of the search code.

Encoding: :meth:`Event.to_data` gives a JSON-safe dict of the event's fields except ``time``
(the log stores ``time``, ``type``, ``version`` and ``sweep_id`` in their own columns);
:func:`decode` is the inverse. A type's schema is frozen once released: a change gets a new
``VERSION`` and an upcaster in ``_UPCASTERS`` that turns old data into the new shape, so old logs
keep replaying.

The dicts and lists inside an event (a run's params, metric records) must not be mutated after
the event is made; the fold shares them with the state instead of copying, for speed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from controller.core.errors import OpensweepError


class EventDecodeError(OpensweepError):
    """A stored event of an unknown type, a version newer than this code, or bad fields."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Base of every event: when it was recorded and which sweep it belongs to.

    ``time`` is Unix seconds as read by the adapter that recorded the event (the core never
    reads a clock). ``sweep_id`` is empty for events about no single sweep.
    """

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    FIELDS: ClassVar[tuple[str, ...]] = ()

    time: float
    sweep_id: str

    def to_data(self) -> dict[str, Any]:
        """The event's fields except ``time``, JSON-safe (the event's own objects, not copies)."""
        return {name: getattr(self, name) for name in self.FIELDS}


# ----------------------------------------------------------------------------- sweeps


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepCreated(Event):
    """A sweep was accepted. Records what the fold needs so it never re-parses the config.

    ``config`` is the validated config as JSON (``SweepConfig.raw``); ``seed`` the root of every
    random choice the sweep makes; ``grid_size`` the number of grid points for ``method: grid``
    (None otherwise); ``metric_*`` from the config's ``metric`` (empty name when none).
    """

    TYPE: ClassVar[str] = "SweepCreated"
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


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepPaused(Event):
    TYPE: ClassVar[str] = "SweepPaused"
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepResumed(Event):
    TYPE: ClassVar[str] = "SweepResumed"
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepStopped(Event):
    """A user stopped the sweep: running runs finish, nothing new is handed out."""

    TYPE: ClassVar[str] = "SweepStopped"
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepCancelled(Event):
    """A user cancelled the sweep; each running run gets its own RunStopRequested."""

    TYPE: ClassVar[str] = "SweepCancelled"
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepFinished(Event):
    """Nothing left to do: grid exhausted, run_cap reached or metric target reached."""

    TYPE: ClassVar[str] = "SweepFinished"
    reason: str


# ----------------------------------------------------------------------------- agents


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentRegistered(Event):
    """An agent joined a sweep (again, when a lost agent comes back under the same id)."""

    TYPE: ClassVar[str] = "AgentRegistered"
    agent_id: str
    hostname: str
    pid: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentLost(Event):
    """The agent missed its heartbeats; its running runs get RunCrashed events of their own."""

    TYPE: ClassVar[str] = "AgentLost"
    agent_id: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentLeft(Event):
    """The agent said Goodbye."""

    TYPE: ClassVar[str] = "AgentLeft"
    agent_id: str
    reason: str


# ----------------------------------------------------------------------------- runs


@dataclass(frozen=True, kw_only=True, slots=True)
class RunAssigned(Event):
    """A run was created and handed to an agent.

    ``params`` is the run's config as nested JSON; ``grid_index`` the grid point for grid
    sweeps; ``suggestion_seed`` the seed the suggestion was drawn with (derived from the sweep's
    seed and ``run_index``), so the choice can be reproduced.
    """

    TYPE: ClassVar[str] = "RunAssigned"
    run_id: str
    run_index: int
    agent_id: str
    params: dict[str, Any]
    grid_index: int | None
    suggestion_seed: int


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStarted(Event):
    TYPE: ClassVar[str] = "RunStarted"
    run_id: str
    pid: int


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricsLogged(Event):
    """Metric records of one run, in seq order, none seen before, stored by column.

    Record ``i`` is ``seqs[i]`` (its place in the run's metric stream, from the agent),
    ``steps[i]`` (the user's step), ``times[i]`` (Unix seconds when the agent read it) and, for
    each metric ``name``, ``values[name][i]``: a number, or None when record ``i`` did not log
    ``name``. Every column has one entry per record. :attr:`records` gives the same records as
    dicts, ``{"seq", "step", "values": {name: number}, "time"}`` (version 1's shape, what the
    RPCs show).

    Why columns (version 2): three of four events in a busy log are these, and replaying a log
    without a snapshot reads every one. By column, a metric name is stored once per event
    instead of once per record (a quarter fewer bytes), parsing makes a few lists instead of a
    dict per record, and the fold takes a run's summary and best value from whole columns
    (last value, ``min``/``max``) instead of record by record. Version 1 (``records``, a list of
    those dicts) is upcast to this shape, so old logs replay to the same state.
    """

    TYPE: ClassVar[str] = "MetricsLogged"
    VERSION: ClassVar[int] = 2
    run_id: str
    seqs: list[int]
    steps: list[int]
    times: list[float]
    values: dict[str, list[Any]]

    def __post_init__(self) -> None:
        n = len(self.seqs)
        if len(self.steps) != n or len(self.times) != n or any(
                len(column) != n for column in self.values.values()):
            raise EventDecodeError(f"MetricsLogged of run {self.run_id}: every column must "
                                   f"have one entry per record ({n} seqs)")

    @classmethod
    def from_records(cls, *, time: float, sweep_id: str, run_id: str,
                     records: Sequence[Mapping[str, Any]]) -> MetricsLogged:
        """The event of ``records`` (dicts with ``seq``, ``step``, ``values``, ``time``), their
        order kept; metric names in the order they first appear. EventDecodeError for a record
        that lacks a key or holds a None value (None marks an absent name here)."""
        n = len(records)
        columns: dict[str, list[Any]] = {}
        try:
            seqs = [r["seq"] for r in records]
            steps = [r["step"] for r in records]
            times = [r["time"] for r in records]
            for i, record in enumerate(records):
                for name, value in record["values"].items():
                    if value is None:
                        raise EventDecodeError(
                            f"MetricsLogged of run {run_id}: record seq {record['seq']} has no "
                            f"value for {name!r} (null); a metric value is a number")
                    column = columns.get(name)
                    if column is None:
                        column = columns[name] = [None] * n
                    column[i] = value
        except (KeyError, TypeError, AttributeError) as exc:
            raise EventDecodeError(f"MetricsLogged of run {run_id}: a record is not "
                                   f"{{seq, step, values, time}}: {exc!r}") from None
        return cls(time=time, sweep_id=sweep_id, run_id=run_id, seqs=seqs, steps=steps,
                   times=times, values=columns)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The records as dicts, ``{"seq", "step", "values": {name: number}, "time"}``, in
        order (new objects on every call; the names a record did not log are left out)."""
        columns = self.values.items()
        rows = zip(self.seqs, self.steps, self.times, strict=True)
        return [{"seq": seq, "step": step,
                 "values": {name: column[i] for name, column in columns
                            if column[i] is not None},
                 "time": at}
                for i, (seq, step, at) in enumerate(rows)]


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStopRequested(Event):
    """The controller told the run's agent to stop it (early termination, cancel)."""

    TYPE: ClassVar[str] = "RunStopRequested"
    run_id: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RunEnded(Event):
    """The agent reported the run's end: ``state`` is finished, failed or stopped."""

    TYPE: ClassVar[str] = "RunEnded"
    run_id: str
    state: str
    exit_code: int | None
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RunCrashed(Event):
    """The controller gave up on the run (its agent was lost or restarted without it)."""

    TYPE: ClassVar[str] = "RunCrashed"
    run_id: str
    reason: str


EVENT_TYPES: tuple[type[Event], ...] = (
    SweepCreated,
    SweepPaused,
    SweepResumed,
    SweepStopped,
    SweepCancelled,
    SweepFinished,
    AgentRegistered,
    AgentLost,
    AgentLeft,
    RunAssigned,
    RunStarted,
    MetricsLogged,
    RunStopRequested,
    RunEnded,
    RunCrashed,
)

for _cls in EVENT_TYPES:
    _cls.FIELDS = tuple(f.name for f in dataclasses.fields(_cls) if f.name != "time")

BY_TYPE: dict[str, type[Event]] = {cls.TYPE: cls for cls in EVENT_TYPES}


def _metrics_logged_v1(data: dict[str, Any]) -> dict[str, Any]:
    """MetricsLogged v1 (``records``, a list of ``{"seq", "step", "values", "time"}``) as v2
    (columns). ``time`` is a placeholder: the event's time is not part of its data."""
    if data.keys() != {"sweep_id", "run_id", "records"} or not isinstance(data["records"], list):
        raise EventDecodeError(f"MetricsLogged v1: fields {sorted(data)} are not "
                               f"['records', 'run_id', 'sweep_id']")
    return MetricsLogged.from_records(time=0.0, sweep_id=data["sweep_id"],
                                      run_id=data["run_id"], records=data["records"]).to_data()


_UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    (MetricsLogged.TYPE, 1): _metrics_logged_v1,
}
"""(type, old version) -> function turning that version's data into the next version's."""


def decode(type_name: str, version: int, time: float, data: dict[str, Any]) -> Event:
    """The event stored as (type, version, time, data); EventDecodeError if it cannot be read.

    ``data`` is used as is (not copied). Older versions are upcast step by step.
    """
    cls = BY_TYPE.get(type_name)
    if cls is None:
        raise EventDecodeError(f"unknown event type {type_name!r}")
    if version != cls.VERSION:
        if version > cls.VERSION:
            raise EventDecodeError(
                f"{type_name} version {version} is newer than this controller ({cls.VERSION})"
            )
        while version < cls.VERSION:
            upcast = _UPCASTERS.get((type_name, version))
            if upcast is None:
                raise EventDecodeError(f"no upcaster for {type_name} version {version}")
            data = upcast(data)
            version += 1
    try:
        return cls(time=time, **data)
    except TypeError as exc:
        raise EventDecodeError(f"{type_name} v{version}: {exc}") from None


def encode(event: Event) -> tuple[str, int, float, str, dict[str, Any]]:
    """(type, version, time, sweep_id, data) for storage; see :meth:`Event.to_data`."""
    return event.TYPE, event.VERSION, event.time, event.sweep_id, event.to_data()
