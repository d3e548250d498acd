"""The search engine's two questions: what to run next, and which running runs to stop.

These are the only entry points the controller (and library mode, :mod:`opensweep.engine`)
needs. Both are pure functions of the config, the sweep's runs and, for suggestions, a seed:
replaying the event log asks them the same questions and gets the same answers.

Grid bookkeeping: the controller keeps its own grid cursor in the fold (``state.py``) because
it must never hand out a point twice under concurrent agents; :func:`next_grid_index` derives
the same answer from the runs alone, for library mode and for checking the fold. Both follow
one rule: a point is *taken* by a run that is running, finished or stopped; a point whose
only run failed or crashed is re-served once (before any new point, oldest failure first),
unlike W&B which never retries a failed grid point; otherwise the lowest point never taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from controller.core import bayes, hyperband
from controller.core.errors import OpensweepError
from controller.core.grid import Grid
from controller.core.random_search import sample_random
from controller.core.runs import CRASHED, FAILED, RunRecord

if TYPE_CHECKING:
    from controller.core.config import SweepConfig
    from controller.core.space import FlatParams

METHODS = ("grid", "random", "bayes")


def next_grid_index(grid: Grid, runs: Sequence[RunRecord]) -> int | None:
    """The grid point to run next, or None when every point is taken or held.

    Runs whose parameters are not a point of this grid are ignored. A point with exactly one
    run, which failed or crashed, is re-served (in the order of ``runs``); a second failure at
    the same point is final.
    """
    runs_at: dict[int, list[str]] = {}
    order: list[int] = []
    for run in runs:
        index = grid.index_of(grid.space.flatten(run.params))
        if index is None:
            continue
        if index not in runs_at:
            runs_at[index] = []
            order.append(index)
        runs_at[index].append(run.state)
    for index in order:
        states = runs_at[index]
        if len(states) == 1 and states[0] in (FAILED, CRASHED):
            return index
    index = 0
    while index in runs_at:
        index += 1
    return index if index < grid.size else None


def next_suggestion(
    config: SweepConfig, runs: Sequence[RunRecord], seed: int
) -> FlatParams | None:
    """The parameters of the next run, or None when the method has nothing left (grid only).

    ``seed`` is a non-negative int the caller records (a new one per suggestion); the result
    is a pure function of ``(config, runs, seed)``. ``run_cap`` and metric targets are the
    caller's business: this only answers "what next if anything".
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OpensweepError(f"a seed must be a non-negative int (got {seed!r})")
    method = config.method
    if method == "grid":
        grid = Grid(config.space)
        index = next_grid_index(grid, runs)
        return None if index is None else grid.point(index)
    if method == "random":
        return sample_random(config.space, seed)
    if method == "bayes":
        return bayes.suggest(config, runs, seed)
    raise OpensweepError(f"unknown search method {method!r} (expected one of {METHODS})")


def runs_to_stop(config: SweepConfig, runs: Sequence[RunRecord]) -> list[str]:
    """Ids of the running runs early termination stops now, in the order of ``runs``.

    [] when the config has no ``early_terminate``. Applies to every method.
    """
    return hyperband.runs_to_stop(config, runs)
