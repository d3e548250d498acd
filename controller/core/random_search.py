"""Random search: independent draws from every parameter's distribution.

The caller owns the seed (the controller records it in the event log), so the same seed gives
the same point and replay reproduces every suggestion.

Each suggestion has its own generator, :func:`generator`: numpy's PCG64 whose 256-bit seed
state is a BLAKE2b hash of the seed. That is what ``numpy.random.default_rng(seed)`` does too,
with numpy's ``SeedSequence`` as the hash; but ``SeedSequence`` hashes through numpy arrays
under ``np.errstate`` and cost 30-60 us a call, more than all the draws of a suggestion, while
BLAKE2b (C, in hashlib) costs 1 us.
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from controller.core.errors import OpensweepError
from controller.core.space import FlatParams, SearchSpace

_PERSON = b"osweep-random"
"""BLAKE2b personalisation: these hashes are for this use only."""


class _SeedState(ISeedSequence):
    """The four 64-bit words PCG64 asks its seed sequence for, already hashed."""

    __slots__ = ("_words",)

    def __init__(self, words: np.ndarray[Any, Any]) -> None:
        self._words = words

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray[Any, Any]:
        if n_words != 4 or dtype is not np.uint64:  # PCG64 asks exactly this
            raise OpensweepError(f"PCG64 asked for {n_words} words of {dtype}; expected 4 uint64")
        return self._words


def generator(seed: int) -> np.random.Generator:
    """The generator of the suggestion drawn with ``seed`` (a non-negative int)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OpensweepError(f"a seed must be a non-negative int (got {seed!r})")
    digest = hashlib.blake2b(seed.to_bytes((seed.bit_length() + 7) // 8 or 1, "little"),
                             digest_size=32, person=_PERSON).digest()
    words = np.frombuffer(digest, dtype="<u8").astype(np.uint64, copy=False)
    # numpy takes any ISeedSequence here (its documented protocol); its stubs name only
    # SeedSequence.
    state = cast(np.random.SeedSequence, _SeedState(words))
    return np.random.Generator(np.random.PCG64(state))


def sample_random(space: SearchSpace, seed: int) -> FlatParams:
    """One random point, a pure function of ``space`` and ``seed`` (a non-negative int)."""
    return space.sample(generator(seed))


def sample_with(space: SearchSpace, rng: np.random.Generator) -> FlatParams:
    """One random point from a generator the caller keeps (e.g. bayes' candidate points)."""
    return space.sample(rng)
