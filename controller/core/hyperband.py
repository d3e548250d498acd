"""Hyperband early termination with W&B's semantics (see docs/hyperband.md).

A sweep with ``early_terminate: {type: hyperband, ...}`` has a list of *brackets*: iteration
counts at which running runs are compared with every other run that got that far. An
*iteration* is the n-th finite value of the sweep's metric in a run's history (not ``_step``).

At bracket ``b`` the population is the b-th logged value of every run (any state) that logged
at least ``b`` values; sorted best first, the threshold is the value at index
``int(count / eta)`` — the best ``1/eta`` of the population survive. A running run is judged
at the highest bracket it has reached; it is stopped when its value is *strictly* worse than
that bracket's threshold. The value judged is, as in W&B's engine:

- ``strict: false``: the best value the run has logged so far (a run that was ever good enough
  survives, so a noisy metric does not kill good runs);
- ``strict: true``: the run's value at the bracket itself (more aggressive).

Pure: no clock, no randomness; the output order follows the input order of ``runs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from controller.core.runs import MAXIMIZE, RUNNING, RunRecord, metric_history

if TYPE_CHECKING:
    from controller.core.config import SweepConfig


class HyperbandLike(Protocol):
    """What hyperband needs of the config's ``early_terminate`` (HyperbandSettings)."""

    @property
    def eta(self) -> float: ...
    @property
    def min_iter(self) -> int | None: ...
    @property
    def max_iter(self) -> int | None: ...
    @property
    def s(self) -> int | None: ...
    @property
    def strict(self) -> bool: ...


@dataclass(frozen=True)
class StopDecision:
    """Why a run is stopped: its value at ``bracket`` was worse than ``threshold``.

    Values are in the metric's own units and direction (not negated for maximize).
    """

    run_id: str
    bracket: int
    value: float
    threshold: float


def _oriented(history: list[float], goal: str) -> list[float]:
    """Values such that smaller is better, whatever the goal."""
    return [-v for v in history] if goal == MAXIMIZE else history


def bracket_thresholds(
    histories: Sequence[Sequence[float]], brackets: Sequence[int], eta: float
) -> dict[int, float]:
    """Threshold per bracket from oriented (smaller is better) histories.

    Brackets no run has reached yet have no threshold (they are left out).
    """
    thresholds: dict[int, float] = {}
    for bracket in sorted(set(brackets)):
        values = sorted(h[bracket - 1] for h in histories if len(h) >= bracket)
        if values:
            thresholds[bracket] = values[int(len(values) / eta)]
    return thresholds


def stop_decisions(
    runs: Sequence[RunRecord],
    *,
    metric: str,
    goal: str,
    brackets: Sequence[int],
    eta: float,
    strict: bool,
) -> list[StopDecision]:
    """The running runs hyperband stops now, with the reason for each.

    ``brackets`` are iteration counts (>= 1); ``eta`` > 1 keeps the best ``1/eta`` at each.
    """
    usable = sorted({b for b in brackets if b >= 1})
    histories = [_oriented(metric_history(run, metric), goal) for run in runs]
    reached = max((len(h) for h in histories), default=0)
    thresholds = bracket_thresholds(histories, [b for b in usable if b <= reached], eta)
    sign = -1.0 if goal == MAXIMIZE else 1.0
    decisions: list[StopDecision] = []
    for run, history in zip(runs, histories, strict=True):
        if run.state != RUNNING or not history:
            continue
        passed = [b for b in usable if b <= len(history)]
        if not passed:
            continue
        bracket = passed[-1]
        value = history[bracket - 1] if strict else min(history)
        threshold = thresholds[bracket]
        if value > threshold:
            decisions.append(
                StopDecision(
                    run_id=run.id,
                    bracket=bracket,
                    value=sign * value,
                    threshold=sign * threshold,
                )
            )
    return decisions


def runs_to_stop(config: SweepConfig, runs: Sequence[RunRecord]) -> list[str]:
    """Ids of the running runs the sweep's hyperband settings stop now ([] without them)."""
    return [d.run_id for d in decide(config, runs)]


def decide(config: SweepConfig, runs: Sequence[RunRecord]) -> list[StopDecision]:
    """:func:`stop_decisions` for a parsed sweep config ([] without ``early_terminate``)."""
    settings = config.early_terminate
    if settings is None or config.metric is None:
        return []
    longest = max((len(metric_history(r, config.metric.name)) for r in runs), default=0)
    return stop_decisions(
        runs,
        metric=config.metric.name,
        goal=config.metric.goal,
        brackets=brackets_up_to(settings, longest),
        eta=settings.eta,
        strict=settings.strict,
    )


def brackets_up_to(settings: HyperbandLike, longest: int) -> list[int]:
    """The settings' brackets no greater than ``longest`` (the ``min_iter`` form is unbounded).

    W&B's arithmetic, each bracket truncated to an int: ``min_iter * eta**k`` for k = 0, 1, ...
    from ``min_iter``; ``max_iter / eta**k`` for k = 1..s from ``max_iter``, stopping below 1.
    """
    eta = float(settings.eta)
    out: list[int] = []
    if settings.max_iter is not None:
        band = float(settings.max_iter)
        for _ in range(int(settings.s or 0)):
            band /= eta
            if band < 1:
                break
            out.append(int(band))
    elif settings.min_iter is not None:
        band = float(settings.min_iter)
        for _ in range(64):
            if band > longest or band < 1:
                break
            out.append(int(band))
            if eta <= 1:
                break
            band *= eta
    return sorted(b for b in set(out) if 1 <= b <= longest)
