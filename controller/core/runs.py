"""RunRecord: the engine's plain view of a run, and the metric helpers the engine shares.

The search methods (grid, random, bayes) and early termination (hyperband) see a sweep's runs
only through :class:`RunRecord`. The controller builds records from its folded state; library
mode (:mod:`opensweep.engine`) builds them from plain dicts. Nothing here does I/O.

Metric values are read the way W&B's engine reads them: only finite real numbers count (a
``NaN`` or ``inf`` loss, a string or a bool is not a value), and "iterations" of a metric are
the positions of its logged values in the run's history, not ``_step`` numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Final

RUNNING: Final = "running"
FINISHED: Final = "finished"
FAILED: Final = "failed"
CRASHED: Final = "crashed"
STOPPED: Final = "stopped"
RUN_STATES: Final = (RUNNING, FINISHED, FAILED, CRASHED, STOPPED)
"""W&B's run states: ``finished`` exit 0, ``failed`` non-zero exit, ``crashed`` agent or host
lost, ``stopped`` killed on the controller's or the user's order."""

MINIMIZE: Final = "minimize"
MAXIMIZE: Final = "maximize"


@dataclass
class RunRecord:
    """One run as the engine sees it.

    ``params`` is the run's config as nested dicts (what the program received); ``summary``
    holds the last value of each metric; ``history`` is every logged record in order, each
    with a ``_step``. ``metric_values`` maps a metric name to its finite values in logging
    order, and ``best`` a metric's best finite value, for a caller that keeps those instead
    of the whole history (the controller keeps no records, only its sweep metric's best, and
    its values for hyperband): where a name is in them, the helpers below read it from there,
    and ``history`` need not hold that metric.
    """

    id: str
    params: dict[str, Any]
    state: str
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    metric_values: dict[str, list[float]] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)


class SharedRunRecord(RunRecord):
    """A record its maker passes to the engine call after call and never changes, nor any
    dict or list in it (library mode's memoised records, built from private copies).

    The engine may remember what it derived from such a record by the record's identity: a
    run whose content changes must arrive as a new record (library mode makes one).
    """


def is_metric_value(value: Any) -> bool:
    """True for a finite real number that is not a bool (W&B's ``is_number``)."""
    if type(value) is float:  # the usual case, without the abstract-class checks below
        return math.isfinite(value)
    if isinstance(value, bool) or not isinstance(value, Real):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def reported_metric(run: RunRecord, name: str) -> bool:
    """True if the run logged ``name`` at all, finite or not (a ``NaN`` loss counts here)."""
    return (name in run.summary or name in run.best or bool(run.metric_values.get(name))
            or any(name in record for record in run.history))


def metric_history(run: RunRecord, name: str) -> list[float]:
    """The run's finite values of ``name`` in logging order: index i is iteration i + 1.
    A new list (callers may change it)."""
    kept = run.metric_values.get(name)
    if kept is not None:
        return list(kept)
    return [float(r[name]) for r in run.history if name in r and is_metric_value(r[name])]


def best_value(run: RunRecord, name: str, goal: str) -> float | None:
    """The best finite value of ``name`` over the run's history and summary, per ``goal``.

    This is what W&B's engine uses for a finished run: a run that peaked and then degraded is
    judged by its peak, which matches users who keep the best checkpoint. None when the run
    never logged a finite value.
    """
    # One pass, no lists: bayes reads every run's best value for every suggestion.
    maximize = goal == MAXIMIZE
    best: float | None = None
    if name in run.best:
        best = run.best[name]
    elif name in run.metric_values:
        kept = run.metric_values[name]
        if kept:
            best = max(kept) if maximize else min(kept)
    else:
        for record in run.history:
            if name in record and is_metric_value(record[name]):
                value = float(record[name])
                if best is None or (value > best if maximize else value < best):
                    best = value
    last: Any = run.summary.get(name)
    if is_metric_value(last):
        value = float(last)
        if best is None or (value > best if maximize else value < best):
            best = value
    return best


def final_value(run: RunRecord, name: str) -> float | None:
    """The summary value of ``name`` if finite, else the last finite logged one, else None
    (from the history or ``metric_values``; ``best`` alone cannot say)."""
    last: Any = run.summary.get(name)
    if is_metric_value(last):
        return float(last)
    history = metric_history(run, name)
    return history[-1] if history else None


def better(a: float, b: float, goal: str) -> bool:
    """True when ``a`` is strictly better than ``b`` under ``goal``."""
    return a > b if goal == MAXIMIZE else a < b


def reaches(value: float, target: float, goal: str) -> bool:
    """True when ``value`` meets ``target``: at or below it to minimize, at or above to maximize."""
    return value >= target if goal == MAXIMIZE else value <= target

