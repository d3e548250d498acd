"""Grid search as a bijection between indexes and points.

Point ``i`` is computed straight from ``i`` (mixed radix over the parameters' value counts), so
the controller only has to remember which indexes are taken, and never materialises the grid.
The order is W&B's: parameters sorted by path, the last one varying fastest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from controller.core.errors import GridIndexError
from controller.core.space import FlatParams, ParamPath, SearchSpace


class Grid:
    """The grid of a search space whose parameters are all gridable (ConfigError otherwise)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._parameters = space.parameters
        self._counts = tuple(p.grid_count() for p in self._parameters)
        size = 1
        for count in self._counts:
            size *= count
        self.size: int = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[FlatParams]:
        for i in range(self.size):
            yield self.point(i)

    def point(self, index: int) -> FlatParams:
        """The parameter values at ``index`` in ``[0, size)``; GridIndexError outside it."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise GridIndexError(f"a grid index must be an int (got {index!r})")
        if not 0 <= index < self.size:
            raise GridIndexError(f"grid index {index} is outside [0, {self.size})")
        digits = [0] * len(self._counts)
        rest = index
        for position in range(len(self._counts) - 1, -1, -1):
            rest, digits[position] = divmod(rest, self._counts[position])
        return {p.path: p.grid_value(d) for p, d in zip(self._parameters, digits, strict=True)}

    def index_of(self, params: Mapping[ParamPath, Any]) -> int | None:
        """The index of the point with these values, or None if they are not a grid point
        (a parameter missing or a value not in its grid). Extra keys are ignored."""
        index = 0
        for p, count in zip(self._parameters, self._counts, strict=True):
            if p.path not in params:
                return None
            digit = p.grid_index(params[p.path])
            if digit is None:
                return None
            index = index * count + digit
        return index
