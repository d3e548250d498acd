"""Random search: independent draws from every parameter's distribution.

The caller owns the seed (the controller records it in the event log), so the same seed gives
the same point and replay reproduces every suggestion.
"""

from __future__ import annotations

import numpy as np

from controller.core.errors import OpensweepError
from controller.core.space import FlatParams, SearchSpace


def sample_random(space: SearchSpace, seed: int) -> FlatParams:
    """One random point, a pure function of ``space`` and ``seed`` (a non-negative int)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OpensweepError(f"a seed must be a non-negative int (got {seed!r})")
    return space.sample(np.random.default_rng(seed))


def sample_with(space: SearchSpace, rng: np.random.Generator) -> FlatParams:
    """One random point from a generator the caller keeps (e.g. bayes' candidate points)."""
    return space.sample(rng)
