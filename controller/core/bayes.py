"""Bayesian optimisation for ``method: bayes`` (see docs/bayes.md).

``suggest(config, runs, seed)`` is a pure function: the same config, runs and seed give the
same suggestion, so replaying the event log reproduces every decision. All randomness comes
from ``numpy.random.default_rng(seed)``.

Outline:

1. Every run's parameters are encoded into a feature vector in [0, 1]^d: a numeric parameter
   is one column through :meth:`Parameter.to_unit` (log warping for log distributions, CDFs
   for normal/beta ones); a categorical parameter is a one-hot block; constants are dropped.
2. Runs become data: finished and stopped runs give the best value of the metric over their
   history (W&B's rule); failed and crashed runs, and finished runs that never reported a
   finite value, get the worst value observed; running runs are *pending*.
3. Until enough runs have a value (:func:`initial_design_size`), suggestions are independent
   uniform draws over the encoded space that no run has taken (:func:`_initial_point`).
4. Then a GP (Matérn 5/2, ARD, MAP hyperparameters; :mod:`controller.core._gp`) is fitted to
   the values after a bad-tail-compressing power transform; pending runs are added as
   fantasies at the posterior mean (kriging believer), so concurrent agents spread out.
5. log expected improvement is maximised over the mixed space: random, Sobol and local
   candidates, then L-BFGS-B on the numeric columns (from the best few and from the best run)
   and exhaustive moves on each categorical. The best candidate wins unless a run already has
   it or a running run is (by the kernel) nearly the same point.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize
import scipy.stats
import scipy.stats.qmc

from controller.core import _gp
from controller.core.errors import OpensweepError
from controller.core.runs import (
    CRASHED,
    FAILED,
    FINISHED,
    MAXIMIZE,
    STOPPED,
    RunRecord,
    SharedRunRecord,
    best_value,
    reported_metric,
)
from controller.core.space import canonical

if TYPE_CHECKING:
    from controller.core.config import SweepConfig
    from controller.core.space import FlatParams, Parameter, ParamPath, SearchSpace

MAX_GP_POINTS = 128
"""Beyond this many modelled runs the GP keeps a subset of them (:func:`_model_subset`)."""
NEAR_SHARE = 0.375
"""Of :data:`MAX_GP_POINTS`, the share that are the runs nearest the incumbent."""
BEST_SHARE = 0.375
"""Of :data:`MAX_GP_POINTS`, the share that are the best of the other runs."""
MAX_FIT_POINTS = 64
"""Hyperparameters are fitted on at most this many of the GP's points (the O(n^3) part)."""
N_RANDOM_CANDIDATES = 512
N_SOBOL_CANDIDATES = 256
N_LOCAL_CANDIDATES = 256
N_STARTS = 4
LBFGS_ITERATIONS = 25
"""Per start, when refining the acquisition's maximum."""
FIT_RESTARTS = 1
"""Extra random starts of the hyperparameter fit while it has at most 32 points."""
FIT_ITERATIONS = 50
FAST_SEARCH_AFTER = MAX_FIT_POINTS
"""Beyond this many modelled runs the acquisition is maximised by the large-sweep search
(a smaller candidate screen, a batched line-search ascent :func:`_line_ascent` through the
explicit inverse of the covariance factor) instead of a scipy L-BFGS-B call per start: the
posterior is well determined by then, and per-start L-BFGS-B was most of a large sweep's
suggestion cost. Up to it the search is exactly the original one, so the regret benchmark
(60 evaluations) is too."""
PENDING_CORRELATION = 0.98
"""A suggestion must correlate less than this (kernel correlation) with every running run."""
_KEY_DECIMALS = 9


INITIAL_DESIGN_SIZE = 10
"""Runs with a value before the GP takes over (whatever the dimension, as Optuna's GP does)."""
_INITIAL_DRAWS = 64


def initial_design_size(n_dims: int) -> int:
    """Runs with a value needed before the GP takes over: :data:`INITIAL_DESIGN_SIZE`.

    It used to be d + 1 (at least 4): on Hartmann-6 and Styblinski-Tang-3 the GP then
    committed to whichever basin the first 7 (4) points happened to slope towards, before
    it had seen enough of the space to tell basins apart. ``n_dims`` is kept so that a rule
    depending on the dimension can come back without touching the callers.
    """
    del n_dims
    return INITIAL_DESIGN_SIZE


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class _Categorical:
    """A categorical parameter's one-hot block: ``values`` without duplicates, in order."""

    param: Parameter
    values: tuple[Any, ...]
    start: int

    def index(self, value: Any) -> int | None:
        key = canonical(value)
        return next((k for k, v in enumerate(self.values) if canonical(v) == key), None)

    @property
    def stop(self) -> int:
        return self.start + len(self.values)


@dataclass
class SpaceEncoding:
    """Feature vectors for a search space: numeric columns first, then one-hot blocks.

    ``groups[c]`` is the kernel length-scale group of column ``c``: one per numeric parameter,
    one per categorical parameter (shared by its block).
    """

    space: SearchSpace
    numeric: list[Parameter] = field(default_factory=list)
    categorical: list[_Categorical] = field(default_factory=list)
    constants: dict[ParamPath, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        start = 0
        cats: list[Parameter] = []
        for param in self.space.parameters:
            if param.distribution == "constant":
                self.constants[param.path] = param.grid_values()[0]
            elif param.is_categorical:
                cats.append(param)
            else:
                self.numeric.append(param)
        start = len(self.numeric)
        for param in cats:
            values = _distinct(param.grid_values())
            if len(values) == 1:
                self.constants[param.path] = values[0]
                continue
            self.categorical.append(_Categorical(param, values, start))
            start += len(values)
        self.dim = start
        groups = list(range(len(self.numeric)))
        for j, block in enumerate(self.categorical):
            groups.extend([len(self.numeric) + j] * len(block.values))
        self.groups = np.asarray(groups, dtype=np.intp)
        self.n_groups = len(self.numeric) + len(self.categorical)
        self._memos = [_memo_for(param) for param in self.numeric]
        self._top_level = all(
            len(param.path) == 1
            for param in [*self.numeric, *(block.param for block in self.categorical)]
        )
        self._cat_memos: list[dict[tuple[type, Any], int | None]] = [
            {} for _ in self.categorical
        ]

    def encode(self, flat: FlatParams) -> np.ndarray | None:
        """The run's feature vector, or None when a value is missing or not in the space."""
        row = self._encode_row(lambda path: flat.get(path, _MISSING))
        return None if row is None else np.array(row)

    def encode_nested(self, nested: Mapping[str, Any]) -> list[float] | None:
        """``encode(space.flatten(nested))`` as a list, without building the flat dict: the
        values are looked up along each modelled parameter's path, as ``flatten`` finds them.
        A sweep re-encodes every run for every suggestion, so this is on the hot path."""

        def lookup(path: ParamPath) -> Any:
            node: Any = nested
            for key in path:
                if (type(node) is dict or isinstance(node, Mapping)) and key in node:
                    node = node[key]
                else:
                    return _MISSING
            return node

        if type(nested) is dict and self._top_level:
            # Every modelled parameter is a top-level key (the usual sweep): a dict lookup each.
            return self._encode_row(lambda path: nested.get(path[0], _MISSING))
        return self._encode_row(lookup)

    def _encode_row(self, lookup: Callable[[ParamPath], Any]) -> list[float] | None:
        x = [0.0] * self.dim
        for i, param in enumerate(self.numeric):
            value = lookup(param.path)
            if value is _MISSING:
                return None
            u = _unit(param, self._memos[i], value)
            if u is None:
                return None
            x[i] = u
        for block, memo in zip(self.categorical, self._cat_memos, strict=True):
            value = lookup(block.param.path)
            if value is _MISSING:
                return None
            index = _category(block, memo, value)
            if index is None:
                return None
            x[block.start + index] = 1.0
        return x

    def decode(self, x: np.ndarray) -> FlatParams:
        """Parameter values for a feature vector (numeric rounded per distribution)."""
        flat: dict[ParamPath, Any] = dict(self.constants)
        for i, param in enumerate(self.numeric):
            flat[param.path] = param.from_unit(float(min(1.0, max(0.0, x[i]))))
        for block in self.categorical:
            flat[block.param.path] = block.values[int(np.argmax(x[block.start : block.stop]))]
        return {path: flat[path] for path in sorted(flat)}

    def canonical(self, xs: np.ndarray) -> np.ndarray:
        """Rows snapped to what they decode to: integer and q_ columns onto their lattice,
        categorical blocks to a hard one-hot; continuous columns only clipped to [0, 1]."""
        out = np.clip(np.array(xs, dtype=float, copy=True), 0.0, 1.0)
        for i, param in enumerate(self.numeric):
            if param.distribution == "int_uniform" or param.is_quantised:
                column = out[:, i]
                count = _int_count(param)
                if count is not None and np.isfinite(column).all():
                    # to_unit(from_unit(u)) for an integer: the centre of u's cell, the same
                    # arithmetic as the two calls (exact while counts are below 2**52).
                    out[:, i] = (np.minimum(np.floor(column * count), count - 1) + 0.5) / count
                else:
                    out[:, i] = [param.to_unit(param.from_unit(float(u))) for u in column]
        for block in self.categorical:
            picks = np.argmax(out[:, block.start : block.stop], axis=1)
            out[:, block.start : block.stop] = 0.0
            out[np.arange(len(out)), block.start + picks] = 1.0
        return out

    def random(self, rng: np.random.Generator, m: int) -> np.ndarray:
        xs = np.zeros((m, self.dim))
        xs[:, : len(self.numeric)] = rng.random((m, len(self.numeric)))
        for block in self.categorical:
            picks = rng.integers(0, len(block.values), size=m)
            xs[np.arange(m), block.start + picks] = 1.0
        return xs

    def sobol(self, rng: np.random.Generator, m: int) -> np.ndarray:
        width = len(self.numeric) + len(self.categorical)
        engine = scipy.stats.qmc.Sobol(d=width, scramble=True, seed=rng)
        m2 = 1 << max(0, (m - 1).bit_length())
        u = engine.random(m2)[:m]
        xs = np.zeros((m, self.dim))
        xs[:, : len(self.numeric)] = u[:, : len(self.numeric)]
        for j, block in enumerate(self.categorical):
            k = len(block.values)
            picks = np.minimum((u[:, len(self.numeric) + j] * k).astype(int), k - 1)
            xs[np.arange(m), block.start + picks] = 1.0
        return xs

    def perturb(
        self, rng: np.random.Generator, centres: np.ndarray, m: int
    ) -> np.ndarray:
        """Local candidates around ``centres``: Gaussian steps of several sizes, categorical
        flips with probability 1/(number of categorical parameters)."""
        picks = centres[rng.integers(0, len(centres), size=m)]
        xs = picks.copy()
        n = len(self.numeric)
        if n:
            # (rng.choice's own draw, without its argument handling: the same numbers)
            scales = _STEP_SCALES[rng.integers(0, len(_STEP_SCALES), size=(m, 1))]
            mask = rng.random((m, n)) < max(0.2, 1.0 / n)
            empty = ~mask.any(1)
            mask[empty, rng.integers(0, n, size=int(empty.sum()))] = True
            step = rng.normal(0.0, 1.0, size=(m, n)) * scales * mask
            xs[:, :n] = np.clip(xs[:, :n] + step, 0.0, 1.0)
        if self.categorical:
            p = 1.0 / len(self.categorical)
            for block in self.categorical:
                flip = rng.random(m) < p
                if flip.any():
                    k = len(block.values)
                    new = rng.integers(0, k, size=int(flip.sum()))
                    xs[flip, block.start : block.stop] = 0.0
                    xs[np.flatnonzero(flip), block.start + new] = 1.0
        return xs


_STEP_SCALES = np.array([0.01, 0.05, 0.15])
"""Step sizes of :meth:`SpaceEncoding.perturb`, in the unit cube."""


def _int_count(param: Parameter) -> int | None:
    """How many integers an ``int_uniform`` parameter spans, when :meth:`SpaceEncoding.
    canonical` may snap its column in one array operation; None for anything else (snapped
    value by value through the parameter's own warping)."""
    if param.distribution != "int_uniform":
        return None
    count = param.grid_count()  # as from_unit and to_unit count them
    return count if 0 < count < 2**52 else None


_MISSING: Any = object()
"""A parameter with no value in the run's config (``None`` is a value)."""

_ENCODINGS: dict[SearchSpace, SpaceEncoding] = {}


def _encoding(space: SearchSpace) -> SpaceEncoding:
    """The space's :class:`SpaceEncoding`, made once (~0.1 ms each; it holds nothing that
    depends on runs except its memos of unit values, bounded here)."""
    enc = _ENCODINGS.get(space)
    if enc is None:
        if len(_ENCODINGS) >= _MEMO_PARAMETERS:
            _ENCODINGS.clear()
        enc = _ENCODINGS[space] = SpaceEncoding(space)
    memos: list[dict[Any, Any]] = [*enc._memos, *enc._cat_memos]
    for memo in memos:
        if len(memo) > _MEMO_VALUES:
            memo.clear()
    return enc

_UNIT_MEMOS: dict[Parameter, dict[tuple[type, Any], float | None]] = {}
_MEMO_PARAMETERS = 256
_MEMO_VALUES = 200_000


def _memo_for(param: Parameter) -> dict[tuple[type, Any], float | None]:
    """The memo of ``param``'s unit values. A sweep re-encodes every run at every suggestion;
    the memo makes that O(new runs). It only ever holds what ``to_unit`` returns for the same
    arguments, so results do not depend on it; it is bounded and dropped when full."""
    memo = _UNIT_MEMOS.get(param)
    if memo is None:
        if len(_UNIT_MEMOS) >= _MEMO_PARAMETERS:
            _UNIT_MEMOS.clear()
        memo = _UNIT_MEMOS[param] = {}
    elif len(memo) > _MEMO_VALUES:
        memo.clear()
    return memo


def _unit(param: Parameter, memo: dict[tuple[type, Any], float | None], value: Any) -> float | None:
    """``param.to_unit(value)`` clipped to [0, 1], or None for a value outside its support."""
    try:
        key = (type(value), value)
        return memo[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable value (a list): not a number anyway
        return None
    try:
        u: float | None = float(param.to_unit(value))
    except (OpensweepError, TypeError, ValueError, OverflowError):
        u = None
    if u is not None:
        u = min(1.0, max(0.0, u)) if math.isfinite(u) else None
    memo[key] = u
    return u


def _category(
    block: _Categorical, memo: dict[tuple[type, Any], int | None], value: Any
) -> int | None:
    """``block.index(value)``, memoised per (type, value): the canonical key behind it is a
    JSON dump, which made categorical lookups most of the cost of encoding 1,000 runs. The type
    is part of the key because ``True`` and ``1`` are different values."""
    try:
        key = (type(value), value)
        return memo[key]
    except KeyError:
        pass
    except TypeError:  # unhashable (a dict or list value): no memo, the slow exact lookup
        return block.index(value)
    index = memo[key] = block.index(value)
    return index


def _distinct(values: Sequence[Any]) -> tuple[Any, ...]:
    """``values`` without repeats (``1`` and ``1.0`` are one value, ``True`` and ``1`` two)."""
    seen: set[str] = set()
    out = []
    for value in values:
        key = canonical(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return tuple(out)


def _key(x: np.ndarray) -> tuple[float, ...]:
    return tuple(np.round(x, _KEY_DECIMALS).tolist())


# --------------------------------------------------------------------------- data


@dataclass
class _Data:
    """Feature rows as the bytes of float64 rows (:func:`_matrix` makes one array of a list:
    ~30x faster than ``np.array`` of a list of lists, which cost ~1 ms per 1,000 runs)."""

    x_obs: list[bytes] = field(default_factory=list)
    y_obs: list[float] = field(default_factory=list)
    x_failed: list[bytes] = field(default_factory=list)
    x_pending: list[bytes] = field(default_factory=list)
    x_all: list[bytes] = field(default_factory=list)
    taken: set[tuple[float, ...]] = field(default_factory=set)
    """:func:`_key` of each row of ``x_all``: the points taken."""


_DATA_LISTS = ("x_obs", "y_obs", "x_failed", "x_pending", "x_all")


def _matrix(rows: list[bytes], dim: int) -> np.ndarray:
    """The rows (float64 bytes) as one (len(rows), dim) array."""
    return np.frombuffer(b"".join(rows), dtype=float).reshape(len(rows), dim).copy()


def _collect(
    enc: SpaceEncoding, runs: Sequence[RunRecord], metric: str, goal: str
) -> _Data:
    """Sort runs into observations (minimisation units), failures, pending and all points.

    - finished / stopped with a finite value: observation, the best over history + summary;
    - finished that never reported a finite value, failed, crashed: failure (imputed worst);
    - stopped without a value: no evidence either way; only its point is remembered;
    - running (and any state this module does not know): pending.

    A library-mode loop passes the same :class:`SharedRunRecord` objects call after call, its
    list growing at the end: the longest run of leading records that are the very objects of
    the previous call (all shared, so unchanged) is taken from that call's result, and only
    the rest is read.
    """
    key = (enc.space, metric, goal)
    shared = _shared_memo(*key)
    last = _LAST_COLLECT.get(key)
    start = 0
    entries: list[_SharedEntry] = []
    if last is not None:
        previous, previous_entries, _ = last
        start = _common_prefix(previous, runs)
        entries = previous_entries[:start]
    new = _entries(enc, runs[start:], shared, metric, goal)
    if last is not None and start == len(last[0]):
        data = _extend(last[2], _data_of(new))  # the usual call: the list grew at its end
    else:
        data = _data_of(entries + new)
    # A record that may change cannot be recognised by identity: only shared ones are kept
    # (the kept prefix was checked when it was kept).
    if all(type(run) is SharedRunRecord for run in runs[start:]):
        if key not in _LAST_COLLECT and len(_LAST_COLLECT) >= _ROW_MEMO_SPACES:
            _LAST_COLLECT.clear()
        _LAST_COLLECT[key] = (list(runs), entries + new, data)
    else:
        _LAST_COLLECT.pop(key, None)
    return data


_LAST_COLLECT: dict[
    tuple[SearchSpace, str, str], tuple[list[RunRecord], list[_SharedEntry], _Data]
] = {}
"""Per (space, metric, goal): the previous call's runs (only when every one is a
:class:`SharedRunRecord`), their entries and the :class:`_Data` made of them."""


def _common_prefix(previous: list[RunRecord], runs: Sequence[RunRecord]) -> int:
    """How many leading runs are the same objects as ``previous``'s (a C-level pass)."""
    same = list(map(operator.is_, previous, runs))
    return same.index(False) if False in same else len(same)


def _entries(
    enc: SpaceEncoding, runs: Sequence[RunRecord], shared: dict[int, _SharedEntry],
    metric: str, goal: str,
) -> list[_SharedEntry]:
    """Each run's :func:`_contribution`, from the per-record memo where it has one."""
    rows = _row_memo(enc.space)
    # Lookups as C-level passes over the list (map, comprehensions): this runs over every run
    # not in the remembered prefix, and a loop of branches and appends per run cost ~1 us each
    # at 1,000 runs.
    entries: list[_SharedEntry] = []
    add = entries.append
    for run, entry in zip(runs, map(shared.get, map(id, runs)), strict=True):
        if entry is None or entry[0] is not run:
            entry = (run, *_contribution(enc, rows, run, metric, goal))
            if type(run) is SharedRunRecord:
                _remember(shared, id(run), entry)
        add(entry)
    return entries


def _data_of(entries: list[_SharedEntry]) -> _Data:
    used = [(x, key, kind, value) for _, x, key, kind, value in entries
            if x is not None and key is not None]
    return _Data(
        x_obs=[x for x, _, kind, _ in used if kind == _OBSERVED],
        y_obs=[value for _, _, kind, value in used if kind == _OBSERVED],
        x_failed=[x for x, _, kind, _ in used if kind == _FAILED],
        x_pending=[x for x, _, kind, _ in used if kind == _PENDING],
        x_all=[x for x, _, _, _ in used],
        taken={key for _, key, _, _ in used},
    )


def _extend(data: _Data, more: _Data) -> _Data:
    """``data`` then ``more``, as new lists (``data`` is remembered and stays as it is)."""
    out = _Data(**{name: getattr(data, name) + getattr(more, name) for name in _DATA_LISTS})
    out.taken = data.taken | more.taken  # a set's copy keeps its entries' hashes: no rehashing
    return out


_OBSERVED, _FAILED, _PENDING, _POINT_ONLY = range(4)
_Contribution = tuple[bytes | None, tuple[float, ...] | None, int, float]


def _contribution(
    enc: SpaceEncoding, rows: dict[int, tuple[Any, Any, _Row]], run: RunRecord, metric: str,
    goal: str,
) -> _Contribution:
    """What ``run`` adds to :class:`_Data`: its row and key (None when not in the space), its
    kind and, for an observation, its value in minimisation units."""
    params = run.params
    entry = rows.get(id(params))
    if entry is not None and entry[0] is params and entry[1] == params:
        x, key = entry[2]  # :func:`_encoded`'s memo hit, inline
    else:
        x, key = _encoded(enc, rows, params)
    if x is None:
        return None, None, _POINT_ONLY, 0.0
    state = run.state
    if state in (FINISHED, STOPPED):
        value = best_value(run, metric, goal)
        if value is not None:
            return x, key, _OBSERVED, -value if goal == MAXIMIZE else value
        if state == FINISHED or reported_metric(run, metric):
            return x, key, _FAILED, 0.0
        return x, key, _POINT_ONLY, 0.0
    if state in (FAILED, CRASHED):
        return x, key, _FAILED, 0.0
    return x, key, _PENDING, 0.0  # running, and any state this module does not know


_SharedEntry = tuple[RunRecord, bytes | None, tuple[float, ...] | None, int, float]
_SHARED_MEMOS: dict[tuple[SearchSpace, str, str], dict[int, _SharedEntry]] = {}


def _shared_memo(space: SearchSpace, metric: str, goal: str) -> dict[int, _SharedEntry]:
    """Contributions of :class:`SharedRunRecord` runs, by the record's ``id`` (the entry holds
    the record, so the ``id`` cannot be reused while remembered). Such a record never
    changes, so what was derived from it holds; this skips re-reading 1,000 runs' params and
    metrics for every suggestion of a library-mode loop."""
    key = (space, metric, goal)
    memo = _SHARED_MEMOS.get(key)
    if memo is None:
        if len(_SHARED_MEMOS) >= _ROW_MEMO_SPACES:
            _SHARED_MEMOS.clear()
        memo = _SHARED_MEMOS[key] = {}
    return memo


def _remember(memo: dict[int, _SharedEntry], key: int, entry: _SharedEntry) -> None:
    if len(memo) >= _ROW_MEMO_RUNS:
        memo.clear()
    memo[key] = entry


# --------------------------------------------------------------------------- encoded-row memo

_ROW_MEMO_SPACES = 64
_ROW_MEMO_RUNS = 200_000
_Row = tuple[bytes, tuple[float, ...]] | tuple[None, None]
"""An encoded row (float64 bytes) and its :func:`_key`, or None twice for a run outside the
space."""
_ROW_MEMOS: dict[SearchSpace, dict[int, tuple[Any, Any, _Row]]] = {}


def _row_memo(space: SearchSpace) -> dict[int, tuple[Any, Any, _Row]]:
    """The memo of encoded rows for ``space``, by ``id`` of a run's params dict."""
    memo = _ROW_MEMOS.get(space)
    if memo is None:
        if len(_ROW_MEMOS) >= _ROW_MEMO_SPACES:
            _ROW_MEMOS.clear()
        memo = _ROW_MEMOS[space] = {}
    elif len(memo) >= _ROW_MEMO_RUNS:
        memo.clear()
    return memo


def _encoded(
    enc: SpaceEncoding, memo: dict[int, tuple[Any, Any, _Row]], params: Mapping[str, Any]
) -> _Row:
    """``enc.encode_nested(params)`` and its key, remembered between suggestions.

    Every suggestion reads every run, and encoding 1,000 runs cost ~5-10 ms even with the
    per-value memos. Callers pass the same params dicts every time (the controller's fold
    and library mode's memoised records hold them), so a row is remembered by the dict's
    identity, keeping a reference (its ``id`` cannot be reused while remembered) and a copy
    of its content: a dict changed in place no longer equals the copy and is encoded
    afresh. (Equality is Python's: a value replaced in place by an equal one of another
    type, ``True`` for ``1``, would not be seen; nothing in opensweep changes a run's params
    in place.) The rows are shared between calls and never modified.
    """
    if type(params) is not dict:
        return _row(enc.encode_nested(params))
    entry = memo.get(id(params))
    if entry is not None and entry[0] is params and entry[1] == params:
        return entry[2]
    row = _row(enc.encode_nested(params))
    memo[id(params)] = (params, _snapshot(params), row)
    return row


def _row(x: list[float] | None) -> _Row:
    if x is None:
        return None, None
    row = np.array(x, dtype=float)
    return row.tobytes(), _key(row)


def _snapshot(value: Any) -> Any:
    """A copy of nested dicts and lists (leaves shared), to compare a value with later."""
    if type(value) is dict:
        return {k: _snapshot(v) for k, v in value.items()}
    if type(value) is list:
        return [_snapshot(v) for v in value]
    return value


_YJ_LAMBDAS = np.linspace(-2.0, 1.0, 31)


def _yeo_johnson(z: np.ndarray, lam: float) -> np.ndarray:
    out = np.empty_like(z)
    pos = z >= 0
    if abs(lam) < 1e-9:
        out[pos] = np.log1p(z[pos])
    else:
        out[pos] = np.expm1(lam * np.log1p(z[pos])) / lam
    out[~pos] = -np.expm1((2.0 - lam) * np.log1p(-z[~pos])) / (2.0 - lam)
    return out


def _yeo_johnson_variances(z: np.ndarray) -> np.ndarray:
    """``_yeo_johnson(z, lam).var()`` for each lam of :data:`_YJ_LAMBDAS`, as one array
    operation (the same arithmetic per element, so the same values) instead of 31."""
    pos = z >= 0
    lam = _YJ_LAMBDAS[:, None]
    log_pos = np.log1p(z[pos])
    upper = np.expm1(lam * log_pos) / lam
    upper[np.abs(_YJ_LAMBDAS) < 1e-9] = log_pos
    out = np.empty((len(_YJ_LAMBDAS), len(z)))
    out[:, pos] = upper
    out[:, ~pos] = -np.expm1((2.0 - lam) * np.log1p(-z[~pos])) / (2.0 - lam)
    return np.asarray(out.var(axis=1))


def _compress_bad_tail(y: np.ndarray) -> np.ndarray | None:
    """Standardise, then a Yeo-Johnson power transform with lambda <= 1 (minimisation).

    lambda < 1 squeezes large (bad) values; lambda is never allowed above 1, so a long tail of
    *good* values is never squashed together. Keeps the GP sane when a few runs are orders of
    magnitude worse than the rest (a diverged loss, Rosenbrock's walls). lambda maximises the
    Gaussian log-likelihood over a grid in [-2, 1] (cheap, and exact enough for a warping).
    None when the values carry no information (all equal, or not finite).
    """
    if not np.all(np.isfinite(y)):
        return None
    scale = float(np.abs(y).max())
    if scale == 0.0:
        return None
    y = y / scale  # so neither 1e300 nor 1e-300 over- or underflows below
    sd = float(y.std())
    if sd <= 1e-12:
        return None
    z = (y - y.mean()) / sd
    if len(np.unique(z)) < 3:
        return z
    log_jacobian = float((np.sign(z) * np.log1p(np.abs(z))).sum())
    with np.errstate(all="ignore"):
        variances = _yeo_johnson_variances(z)
        # The log-likelihood of every lambda at once (a loop over the 31 cost ~0.15 ms, a
        # fiftieth of a large sweep's suggestion); a variance that is not a positive finite
        # number rules its lambda out, and the first best lambda wins, 1 when none qualifies.
        usable = (variances > 1e-300) & np.isfinite(variances)
        llf = -0.5 * len(z) * np.log(np.where(usable, variances, 1.0)) + (
            _YJ_LAMBDAS - 1.0
        ) * log_jacobian
        llf[~usable | np.isnan(llf)] = -math.inf
        pick = int(np.argmax(llf))
        best_lam = float(_YJ_LAMBDAS[pick]) if llf[pick] > -math.inf else 1.0
        out = _yeo_johnson(z, best_lam)
    if not np.all(np.isfinite(out)) or float(out.std()) <= 1e-12:
        return z
    return (out - out.mean()) / out.std()


def _subset(y: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``limit`` points: the best half, then a random draw of the rest."""
    n = len(y)
    if n <= limit:
        return np.arange(n)
    order = np.argsort(y, kind="stable")
    keep_best = order[: limit // 2]
    rest = order[limit // 2 :]
    chosen = rng.choice(rest, size=limit - len(keep_best), replace=False)
    return np.sort(np.concatenate([keep_best, chosen]))


def _model_subset(
    x: np.ndarray, y: np.ndarray, limit: int, rng: np.random.Generator, scales: np.ndarray
) -> np.ndarray:
    """Indices (sorted) of at most ``limit`` modelled runs for the GP, all of them up to it.

    Beyond ``limit``: the :data:`NEAR_SHARE` runs nearest the incumbent (the best run; in
    length-scale units, where the kernel is isotropic), the :data:`BEST_SHARE` best runs
    among the others, and a uniform draw from ``rng`` of the rest. The neighbourhood is what
    the search needs most: late in a sweep the acquisition's peak sits next to the
    incumbent, and the runs around it, good or bad, are what shape the basin there. A subset
    of the best runs alone dropped the worse runs beside the incumbent; the GP then smoothed
    the basin's walls away, and long sweeps (bench/results/gp_cap.md) converged 3-30x less
    closely (or stalled) than with every run. The best runs keep the other good regions in
    the model, and the random rest keeps the explored space explored at the density it was
    run at (a region no kept run covers looks unexplored to the acquisition).
    Running runs are not subject to this: they enter the GP afterwards, as fantasies.
    """
    n = len(y)
    if n <= limit:
        return np.arange(n)
    # Partitions, not sorts (O(n)): which runs are kept is all that matters, not their order.
    chosen = np.zeros(n, dtype=bool)
    delta = (x - x[int(np.argmin(y))]) / scales
    n_near = int(limit * NEAR_SHARE)
    chosen[np.argpartition((delta * delta).sum(1), n_near - 1)[:n_near]] = True
    n_best = int(limit * BEST_SHARE)
    if n_best:
        others = np.where(chosen, np.inf, y)
        chosen[np.argpartition(others, n_best - 1)[:n_best]] = True
    rest = np.flatnonzero(~chosen)
    chosen[rng.choice(rest, size=limit - int(chosen.sum()), replace=False)] = True
    return np.flatnonzero(chosen)


# --------------------------------------------------------------------------- acquisition


class _Acquisition:
    def __init__(self, gp: _gp.GaussianProcess, best: float) -> None:
        self.gp = gp
        self.best = best

    def __call__(self, xs: np.ndarray) -> np.ndarray:
        mean, var = self.gp.predict(xs)
        return _gp.log_expected_improvement(mean, var, self.best)

    def with_grad(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, var, dmean, dvar = self.gp.predict_with_grad(xs)
        return _gp.log_expected_improvement_with_grad(mean, var, dmean, dvar, self.best)


def _local_numeric(enc: SpaceEncoding, acq: _Acquisition, starts: np.ndarray) -> np.ndarray:
    """L-BFGS-B on the numeric columns from each start; a start is kept if it was better."""
    n = len(enc.numeric)
    if n == 0:
        return starts
    out = starts.copy()
    for i, start in enumerate(starts):
        row = start.copy()

        def objective(u: np.ndarray, row: np.ndarray = row) -> tuple[float, np.ndarray]:
            row[:n] = u
            value, grad = acq.with_grad(row[None, :])
            return -float(value[0]), -grad[0, :n]

        result = scipy.optimize.minimize(
            objective,
            start[:n],
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * n,
            options={"maxiter": LBFGS_ITERATIONS},
        )
        candidate = start.copy()
        candidate[:n] = np.clip(np.asarray(result.x), 0.0, 1.0)
        if acq(candidate[None, :])[0] > acq(start[None, :])[0]:
            out[i] = candidate
    return out


def _categorical_moves(enc: SpaceEncoding, acq: _Acquisition, xs: np.ndarray) -> np.ndarray:
    """For each point, each categorical parameter in turn set to its best value."""
    out = xs.copy()
    for row in out:
        for block in enc.categorical:
            k = len(block.values)
            variants = np.repeat(row[None, :], k, axis=0)
            variants[:, block.start : block.stop] = np.eye(k)
            row[:] = variants[int(np.argmax(acq(variants)))]
    return out


# --------------------------------------------------------------------------- large-sweep search

LARGE_RANDOM_CANDIDATES = 96
LARGE_LOCAL_CANDIDATES = 160
"""The candidate screen of a large sweep: 256 points against the small search's 1,024 (each
costs a kernel row and a variance product against up to :data:`MAX_GP_POINTS` points, and the
screen was a third of a suggestion). With 320 (128 + 192), on 72 acquisitions captured from 8
bench problems at 100, 300 and 1,000 runs, the large-sweep search never ended more than 0.02
below the small search's best log EI, at a fifth of its cost. 256 with :data:`LARGE_STARTS`
5 and :data:`LINE_ROUNDS` 4 (~1 ms, 10-15% of a suggestion at 1,000 runs, cheaper) was no
worse over long sweeps: ``bench gp_cap`` paired, 400 evaluations, 6 seeds, regret at 400
against the 320/6/5 search, better / worse seeds and geometric mean of the ratios: Branin
4 / 2 (0.46), Hartmann-6 5 / 1 (0.88), Ackley-5 3 / 3 (0.99), ML-like 5 / 1 (0.33)."""
LARGE_CENTRES = 64
"""The local candidates of a large sweep are steps around this many best runs, not 5: the
acquisition's peaks sit in every good basin, and the 5 best runs of a long sweep are often all
in one (on Branin at 300 runs, around 5 centres the search missed by 1.2-1.8 in log EI the
peaks that a dense grid found near other good runs)."""
LARGE_POOL = 16
"""Screened candidates kept as fallbacks next to the refined points (the small search: 64)."""
LARGE_STARTS = 5
"""Starts of the ascent besides the best run (the small search: 4; batched, they cost rows of
one call, not calls)."""
LINE_STEPS = np.array([0.005, 0.03, 0.2, 1.0])
"""Step lengths tried at once along the gradient by :func:`_line_ascent`, in length scales."""
LINE_ROUNDS = 4
"""Rounds of :func:`_line_ascent` at most (see :data:`LARGE_RANDOM_CANDIDATES`)."""


def _large_sweep_candidates(
    enc: SpaceEncoding, centres: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A rotated low-discrepancy set and local candidates around the best runs."""
    return np.vstack(
        [
            _rotated_halton(enc, rng, LARGE_RANDOM_CANDIDATES),
            enc.perturb(rng, centres, LARGE_LOCAL_CANDIDATES),
        ]
    )


_HALTON_BASES: dict[tuple[int, int], np.ndarray] = {}


def _rotated_halton(enc: SpaceEncoding, rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` points of a fixed scrambled Halton set shifted by a random vector modulo 1
    (a Cranley-Patterson rotation: still evenly spread, as random points are not), mapped to
    the encoding as :meth:`SpaceEncoding.sobol` maps its points. The set is built once per
    width: building a low-discrepancy engine cost ~1 ms, a fifth of a large sweep's search.
    Halton, not Sobol as the small search uses: its discrepancy at these sizes is within ~1.5x
    of Sobol's, and scipy's Sobol engine reads its direction numbers from disk on first use
    (~23 ms, a sixth of a cold suggestion at 1,000 runs; Halton's first use ~1.5 ms)."""
    n, width = len(enc.numeric), len(enc.numeric) + len(enc.categorical)
    base = _HALTON_BASES.get((width, m))
    if base is None:
        engine = scipy.stats.qmc.Halton(d=width, scramble=True, seed=np.random.default_rng(0))
        base = _HALTON_BASES[(width, m)] = engine.random(m)
    u = (base + rng.random(width)) % 1.0
    xs = np.zeros((m, enc.dim))
    xs[:, :n] = u[:, :n]
    for j, block in enumerate(enc.categorical):
        k = len(block.values)
        picks = np.minimum((u[:, n + j] * k).astype(int), k - 1)
        xs[np.arange(m), block.start + picks] = 1.0
    return xs


def _line_ascent(enc: SpaceEncoding, acq: _Acquisition, starts: np.ndarray) -> np.ndarray:
    """Gradient ascent of log EI on the numeric columns with every step length at once.

    Each round, every start tries all :data:`LINE_STEPS` along its gradient (in length-scale
    units, components pointing out of the cube at a bound dropped) in one batched posterior
    evaluation, and moves to the best trial if it improves. A line search per call instead of
    one step per call: a large sweep's search is bounded by the number of posterior calls,
    whose overhead is fixed, not by the number of points in each. No row ever gets worse.
    """
    n = len(enc.numeric)
    if n == 0 or len(starts) == 0:
        return starts
    gp = acq.gp
    if not isinstance(gp, _gp.ExplicitInverseGP):
        gp = _gp.ExplicitInverseGP.of(gp)
    x = starts.copy()
    value, grad = gp.log_ei_with_grad(x, acq.best, n)
    scale = gp.column_scales[:n]
    k = len(LINE_STEPS)
    steps_all = LINE_STEPS[:, None] * scale  # (k, n): each step length in each column's units
    moving = np.ones(len(x), dtype=bool)  # a row whose every trial failed would fail again
    for _ in range(LINE_ROUNDS):
        u = x[:, :n]
        g = np.where(((u <= 0.0) & (grad < 0.0)) | ((u >= 1.0) & (grad > 0.0)), 0.0, grad)
        g *= scale  # the gradient in length-scale units, where the kernel is isotropic
        norm = np.sqrt((g * g).sum(1))
        rows = np.flatnonzero(moving & (norm > 0.0))
        if len(rows) == 0:
            break
        direction = g[rows] / norm[rows, None]  # (r, n), unit length in length-scale units
        trial = np.repeat(x[rows], k, axis=0)  # row r's trials at r*k .. r*k+k-1
        moved = u[rows][:, None, :] + direction[:, None, :] * steps_all[None, :, :]
        trial[:, :n] = np.clip(moved.reshape(-1, n), 0.0, 1.0)
        t_value, t_grad = gp.log_ei_with_grad(trial, acq.best, n)
        picks = np.arange(len(rows)) * k + np.argmax(t_value.reshape(len(rows), k), axis=1)
        better = t_value[picks] > value[rows]
        moving[rows[~better]] = False
        up, picks = rows[better], picks[better]
        x[up] = trial[picks]
        value[up] = t_value[picks]
        grad[up] = t_grad[picks]
    return x


def _refine_large(enc: SpaceEncoding, acq: _Acquisition, starts: np.ndarray) -> np.ndarray:
    """One :func:`_line_ascent` of the numeric columns, then the categorical moves.

    (The small-sweep search ascends again after its moves. Here the starts come from a screen
    that scored each candidate with its own categories, and one ascent then the moves reached
    the same acquisition values on the ML-like space's captured acquisitions.)
    """
    refined = _line_ascent(enc, acq, starts)
    return _categorical_moves_batched(enc, acq, refined) if enc.categorical else refined


def _categorical_moves_batched(
    enc: SpaceEncoding, acq: _Acquisition, xs: np.ndarray
) -> np.ndarray:
    """:func:`_categorical_moves` with one acquisition call per categorical parameter."""
    out = xs.copy()
    m = len(out)
    for block in enc.categorical:
        k = len(block.values)
        variants = np.repeat(out, k, axis=0)  # row r's variants at r*k .. r*k+k-1
        variants[:, block.start : block.stop] = np.tile(np.eye(k), (m, 1))
        picks = np.argmax(acq(variants).reshape(m, k), axis=1)
        out = variants[np.arange(m) * k + picks]
    return out


def _maximise(
    enc: SpaceEncoding,
    acq: _Acquisition,
    centres: np.ndarray,
    taken: set[tuple[float, ...]],
    pending: np.ndarray,
    rng: np.random.Generator,
    *,
    fast: bool = False,
) -> np.ndarray:
    """The untaken point with the highest acquisition value found.

    Points already run are *taken* (exact match after rounding); so is anything the kernel
    correlates above :data:`PENDING_CORRELATION` with a running run: the model may be so sure
    of itself that the believer fantasy leaves the acquisition's peak on the pending point,
    and two agents running the same configuration at once learn nothing from the second.
    """

    def allowed(rows: np.ndarray) -> np.ndarray:
        keys = map(tuple, np.round(rows, _KEY_DECIMALS).tolist())  # each row's _key, at once
        ok = np.array([key not in taken for key in keys], dtype=bool)
        if len(pending):
            ok &= acq.gp.correlation(rows, pending).max(1) < PENDING_CORRELATION
        return ok

    candidates = _large_sweep_candidates(enc, centres, rng) if fast else np.vstack(
        [
            enc.random(rng, N_RANDOM_CANDIDATES),
            enc.sobol(rng, N_SOBOL_CANDIDATES),
            enc.perturb(rng, centres, N_LOCAL_CANDIDATES),
        ]
    )
    values = acq(candidates)
    order = np.argsort(-values, kind="stable")
    starts: list[np.ndarray] = []
    seen: set[tuple[float, ...]] = set()
    for index in order:
        key = _key(candidates[index])
        if key in seen:
            continue
        seen.add(key)
        starts.append(candidates[index])
        if len(starts) == (LARGE_STARTS if fast else N_STARTS):
            break
    starts.append(centres[0])  # the incumbent: refine around the best run as well
    refined = np.array(starts)
    if fast:
        refined = _refine_large(enc, acq, refined)
    else:
        refined = _local_numeric(enc, acq, refined)
        if enc.categorical:
            # Categorical moves change the landscape of the numeric columns: refine once more.
            refined = _local_numeric(enc, acq, _categorical_moves(enc, acq, refined))
            refined = _categorical_moves(enc, acq, refined)
    pool = enc.canonical(np.vstack([refined, candidates[order[: LARGE_POOL if fast else 64]]]))
    pool_values = acq(pool)
    pool_order = np.argsort(-pool_values, kind="stable")
    ok = allowed(pool[pool_order])
    if ok.any():
        return pool[pool_order[int(np.argmax(ok))]]
    # Every good candidate is taken: the best untaken candidate at all.
    rest = enc.canonical(candidates[order])
    ok = allowed(rest)
    if ok.any():
        return rest[int(np.argmax(ok))]
    return pool[pool_order[0]]


def _initial_point(
    enc: SpaceEncoding, existing: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """An initial-design point: a uniform draw from the unit cube (each numeric parameter
    from its own distribution, through the warping; each category equally likely) that no
    run has yet; the space-filling rule once draws keep landing on taken points (a small
    discrete space).

    Independent draws, not a maximin design, on purpose. A maximin design spaces its points
    evenly and at fixed relative offsets: the GP then has no pairs of nearby points to learn
    its length scales from, and symmetric placements (both wells of a double-well coordinate
    sampled at equal depth) leave the first basin found to win by default. Measured over 10
    seeds (docs/bayes.md): Styblinski-Tang-3 found its global basin in 4 sweeps with the
    maximin design and 10 with random draws; Hartmann-6 in 4 and 6.
    """
    taken = {_key(row) for row in existing}
    for _ in range(_INITIAL_DRAWS):
        x = enc.canonical(enc.random(rng, 1))[0]
        if _key(x) not in taken:
            return x
    return _space_filling(enc, existing, rng)


def _space_filling(
    enc: SpaceEncoding, existing: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Of a scrambled Sobol set, the candidate farthest from every existing point.

    Distances wrap around (the unit cube as a torus) so the design has no pull towards the
    boundary: plain maximin puts the first points in corners, where hyperparameters are
    usually worst. A categorical parameter adds 1 to the squared distance when it differs.
    """
    candidates = enc.canonical(enc.sobol(rng, 256))
    if len(existing) == 0:
        return candidates[0]
    return candidates[int(np.argmax(_torus_distance2(enc, candidates, existing)))]


def _torus_distance2(enc: SpaceEncoding, xs: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each row of ``xs``, the squared wrap-around distance to the nearest of ``points``."""
    n = len(enc.numeric)
    delta = np.abs(xs[:, None, :n] - points[None, :, :n])
    delta = np.minimum(delta, 1.0 - delta)
    d2 = (delta**2).sum(-1)
    if enc.dim > n:
        d2 = d2 + 0.5 * ((xs[:, None, n:] - points[None, :, n:]) ** 2).sum(-1)
    return np.asarray(d2.min(1))


# --------------------------------------------------------------------------- hyperparameters

REFIT_EVERY_RUN_UP_TO = MAX_FIT_POINTS
"""Up to this many modelled runs the hyperparameters are fitted afresh for every suggestion
(every new run enters the fit); beyond it the fit subsamples anyway, and is redone only when
the count grows by about 10% (see :func:`_refit_point`)."""
_FIT_MEMO: dict[tuple[int, bytes, bytes, bytes], _gp.Hyperparameters | None] = {}
_FIT_MEMO_SIZE = 32


def _refit_point(n: int) -> int:
    """The largest point of 64, 71, 79, 87, ... (each ~10% above the last) not above ``n``."""
    point = REFIT_EVERY_RUN_UP_TO
    while True:
        following = math.ceil(point * 1.1)
        if following > n:
            return point
        point = following


def _fit(
    enc: SpaceEncoding, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> _gp.Hyperparameters | None:
    y_t = _compress_bad_tail(y)
    if y_t is None:
        return None
    fit = _subset(y_t, MAX_FIT_POINTS, rng)
    restarts = FIT_RESTARTS if len(fit) <= 32 else 0
    return _gp.fit_hyperparameters(
        x[fit], y_t[fit], enc.groups, rng, restarts=restarts, maxiter=FIT_ITERATIONS
    )


def _hyperparameters(
    enc: SpaceEncoding, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> _gp.Hyperparameters | None:
    """GP hyperparameters for modelled runs ``(x, y)`` (minimisation units, run order).

    Past :data:`REFIT_EVERY_RUN_UP_TO` runs they come from the first :func:`_refit_point`
    runs only, with a generator seeded by that count: a pure function of those runs, so it is
    memoised, and a growing sweep refits only every ~10% of new runs (the fit is a third of a
    suggestion's cost; hyperparameters barely move between neighbouring sizes). None when
    the values carry no information.
    """
    n = len(y)
    if n <= REFIT_EVERY_RUN_UP_TO:
        return _fit(enc, x, y, rng)
    k = _refit_point(n)
    key = (k, x[:k].tobytes(), y[:k].tobytes(), enc.groups.tobytes())
    if key not in _FIT_MEMO:
        if len(_FIT_MEMO) >= _FIT_MEMO_SIZE:
            _FIT_MEMO.clear()
        _FIT_MEMO[key] = _fit(enc, x[:k], y[:k], np.random.default_rng(k))
    return _FIT_MEMO[key]


# --------------------------------------------------------------------------- entry point


def suggest(config: SweepConfig, runs: Sequence[RunRecord], seed: int) -> FlatParams:
    """The next parameters to run for a ``method: bayes`` sweep.

    Deterministic in (config, runs, seed). Raises :class:`OpensweepError` without a metric.
    """
    if config.metric is None:
        raise OpensweepError("bayes search needs a metric (metric.name and metric.goal)")
    rng = np.random.default_rng(seed)
    enc = _encoding(config.space)
    if enc.dim == 0:
        return enc.decode(np.zeros(0))
    data = _collect(enc, runs, config.metric.name, config.metric.goal)
    if len(data.y_obs) < initial_design_size(enc.n_groups):
        return enc.decode(_initial_point(enc, _matrix(data.x_all, enc.dim), rng))

    x_obs = _matrix(data.x_obs, enc.dim)
    y_obs = np.array(data.y_obs)
    worst = float(y_obs.max())
    if data.x_failed:
        x_model = np.vstack([x_obs, _matrix(data.x_failed, enc.dim)])
        y_model = np.concatenate([y_obs, np.full(len(data.x_failed), worst)])
    else:
        x_model, y_model = x_obs, y_obs
    hp = _hyperparameters(enc, x_model, y_model, rng)
    keep = _model_subset(
        x_model, y_model, MAX_GP_POINTS, rng, _gp.column_scales(enc.groups, hp.lengthscales)
    ) if hp is not None else np.arange(len(y_model))
    x_model, y_model = x_model[keep], y_model[keep]
    is_obs = keep < len(y_obs)
    y_t = _compress_bad_tail(y_model)
    if y_t is None or hp is None:
        # Every value is the same: nothing to model yet, so keep filling the space.
        return enc.decode(_space_filling(enc, _matrix(data.x_all, enc.dim), rng))
    gp = _gp.GaussianProcess(x_model, y_t, enc.groups, hp, y_mean=0.0, y_scale=1.0)
    fast = len(y_obs) + len(data.x_failed) > FAST_SEARCH_AFTER
    # (Past the small-sweep threshold the means at the data come from the factorisation
    # already made, not from another kernel matrix: equal up to rounding.)
    mean_obs = gp.mean_at_data()[is_obs] if fast else gp.mean(x_model[is_obs])
    best = float(mean_obs.min())
    if data.x_pending:
        x_pending = _matrix(data.x_pending, enc.dim)
        fantasy = gp.mean(x_pending)
        gp = gp.condition(x_pending, fantasy)
        # The believed values are data now: the incumbent includes them, so a pending point
        # better than the best finished run stops looking like an improvement to itself.
        best = min(best, float(fantasy.min()))

    order = np.argsort(y_obs, kind="stable")[: LARGE_CENTRES if fast else 5]
    taken = data.taken
    pending = _matrix(data.x_pending, enc.dim)
    if fast:  # hundreds of posterior calls at a few points each: one product per call
        gp = _gp.ExplicitInverseGP.of(gp)
    chosen = _maximise(
        enc, _Acquisition(gp, best), x_obs[order], taken, pending, rng, fast=fast
    )
    return enc.decode(chosen)
