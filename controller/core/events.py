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
from collections.abc import Callable
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
    """Metric records of one run, in seq order, none seen before.

    Each record is ``{"seq": int, "step": int, "values": {name: float}, "time": float}``.
    """

    TYPE: ClassVar[str] = "MetricsLogged"
    run_id: str
    records: list[dict[str, Any]]


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

_UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}
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
