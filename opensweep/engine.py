"""Library mode: opensweep's search engine without a controller, on plain dicts.

For users who drive their own loop (a notebook, a cluster scheduler, another tracker) and only
want the decisions::

    from opensweep.engine import next_run, stop_runs

    config = {"method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"lr": {"distribution": "log_uniform_values",
                                    "min": 1e-5, "max": 1e-1},
                             "optimizer": {"values": ["adam", "sgd"]}}}
    runs = []
    for i in range(30):
        params = next_run(config, runs, seed=i)          # {"lr": ..., "optimizer": ...}
        loss = train(**params)
        runs.append({"id": f"run-{i}", "config": params, "state": "finished",
                     "summary": {"loss": loss}})

The answers are the ones the controller would give for the same runs: both call
:mod:`controller.core.engine`. Nothing here keeps state between calls, so the caller owns the
list of runs, and the same ``(config, runs, seed)`` always gives the same answer.

Runs and configs given as plain dicts of plain values are memoised by their content (see
:func:`_records`), so asking again with a list that grew by one run costs about one run's
work, not the whole list's; the answers are the same either way.

A run is a mapping with these keys:

``id`` (str, required, unique)
    The run's name; :func:`stop_runs` returns these.
``config`` (mapping, required)
    The run's parameter values, nested as :func:`next_run` returns them
    (``{"optimizer": {"lr": 0.1}}``), or flat with dotted keys (``{"optimizer.lr": 0.1}``).
    A nested lookup is tried first, so a parameter whose own name contains a dot is found too.
    Keys that are not parameters are ignored; a ``value:`` (constant) parameter may be left out.
``state`` (str, required)
    ``running``, ``finished`` (exit 0), ``failed`` (non-zero exit), ``crashed`` (lost) or
    ``stopped`` (killed on purpose, e.g. by :func:`stop_runs`). Bayes treats ``running`` runs
    as pending (it suggests elsewhere) and ``failed``/``crashed`` ones as bad results.
``summary`` (mapping, optional)
    The last value of each metric. Defaults to the last value of each key in ``history``.
``history`` (list of mappings, optional)
    Every logged record in order, e.g. ``{"loss": 0.3, "_step": 4}``; hyperband counts the
    n-th logged value of the metric as iteration n. A missing ``_step`` is the record's index.
"""

from __future__ import annotations

import itertools
import marshal
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any, cast

import msgspec

from controller.core import engine as _engine
from controller.core.config import SweepConfig, load_config
from controller.core.errors import OpensweepError
from controller.core.runs import RUN_STATES, RunRecord, SharedRunRecord
from controller.core.space import FlatParams, SearchSpace

__all__ = ["EngineInputError", "next_run", "stop_runs", "to_run_record"]


_RUN_KEYS = ("id", "config", "state", "summary", "history")


class EngineInputError(OpensweepError, ValueError):
    """A run or argument given to library mode is malformed; the message names which and why."""


def _config(config: SweepConfig | Mapping[str, Any] | str) -> SweepConfig:
    if isinstance(config, SweepConfig):
        return config
    if type(config) is dict:
        # Parsed once per content: a loop asks with the same dict every time. (Text and
        # paths are parsed every time: a file can change between calls.)
        key = _content_key(config)
        if key is not None:
            parsed = _config_memo.get(key)
            if parsed is None:
                parsed = load_config(config)
                if _is_plain(config):
                    _memo_put(_config_memo, key, parsed, _MEMO_CONFIGS)
            return parsed
    if isinstance(config, (Mapping, str)):
        return load_config(config)
    raise EngineInputError(
        f"config must be a dict, a YAML file path or text, or a SweepConfig "
        f"(got {type(config).__name__})"
    )


def _flat_lookup(space: SearchSpace, values: Mapping[Any, Any]) -> FlatParams:
    """The space's parameters found in ``values``: nested, dotted-key or tuple-key form.

    A constant left out is filled with its value: it can have no other.
    """
    flat = space.flatten(values)
    for param in space.parameters:
        path = param.path
        if path in flat:
            continue
        for key in (".".join(path), path):
            if key in values:
                flat[path] = values[key]
                break
        else:
            if param.is_constant:
                flat[path] = param.grid_value(0)
    return {path: flat[path] for path in space.paths if path in flat}


def to_run_record(space: SearchSpace, run: Any, where: str = "run") -> RunRecord:
    """A :class:`RunRecord` from a run mapping (see the module docstring for its keys).

    Raises :class:`EngineInputError` naming ``where`` and the offending key.
    """
    if isinstance(run, RunRecord):
        return run
    return _build_record(space, run, where, RunRecord)


def _build_record(
    space: SearchSpace, run: Any, where: str, cls: type[RunRecord]
) -> RunRecord:
    """:func:`to_run_record` of a run that is not a record, as a ``cls``."""
    if not isinstance(run, Mapping):
        raise EngineInputError(f"{where}: must be a mapping (got {type(run).__name__})")
    unknown = sorted(str(k) for k in run if k not in _RUN_KEYS)
    if unknown:
        raise EngineInputError(
            f"{where}: unknown key(s) {', '.join(unknown)} "
            "(expected id, config, state, summary, history)"
        )
    run_id = run.get("id")
    if not isinstance(run_id, str) or not run_id:
        raise EngineInputError(f"{where}.id: must be a non-empty string (got {run_id!r})")
    state = run.get("state")
    if state not in RUN_STATES:
        raise EngineInputError(
            f"{where}.state: must be one of {', '.join(RUN_STATES)} (got {state!r})"
        )
    values = run.get("config")
    if not isinstance(values, Mapping):
        raise EngineInputError(
            f"{where}.config: must be a mapping of parameter values "
            f"(got {type(values).__name__})"
        )
    history_in = run.get("history", [])
    if isinstance(history_in, (str, bytes)) or not isinstance(history_in, Sequence):
        raise EngineInputError(
            f"{where}.history: must be a list of mappings (got {type(history_in).__name__})"
        )
    history: list[dict[str, Any]] = []
    for i, record in enumerate(history_in):
        if type(record) is dict and "_step" in record:
            history.append(record)  # already what the core reads; no copy (it never writes)
        elif isinstance(record, Mapping):
            history.append({"_step": i, **{str(k): v for k, v in record.items()}})
        else:
            raise EngineInputError(
                f"{where}.history[{i}]: must be a mapping (got {type(record).__name__})"
            )
    summary_in = run.get("summary")
    if summary_in is None:
        summary: dict[str, Any] = {}
        for record in history:
            summary.update({k: v for k, v in record.items() if k != "_step"})
    elif isinstance(summary_in, Mapping):
        summary = {str(k): v for k, v in summary_in.items()}
    else:
        raise EngineInputError(
            f"{where}.summary: must be a mapping (got {type(summary_in).__name__})"
        )
    found = space.flatten(values)
    if len(found) == len(space.parameters):
        params = dict(values)  # nested and complete, as next_run returns it
    else:
        params = space.nest(_flat_lookup(space, values))
    return cls(id=run_id, params=params, state=state, summary=summary, history=history)


_MEMO_RECORDS = 200_000
"""Records kept per search space by :func:`_records` (all dropped when full)."""
_MEMO_CONFIGS = 64
_config_memo: dict[bytes, SweepConfig] = {}
_record_memo: dict[SearchSpace, dict[bytes, RunRecord]] = {}


def _content_key(value: Any) -> bytes | None:
    """Bytes that are the same for two :func:`_is_plain` values exactly when their content is:
    same types (``True`` is not ``1``, ``1`` is not ``1.0``), values, key order and nesting.
    None when ``marshal`` cannot write the value.

    Only plain values are ever stored under a key (checked when one is stored), because
    marshal writes any buffer (a numpy scalar) as if it were ``bytes``: a key found in a memo
    therefore always belongs to a plain value, and no other value has the same bytes.
    ``marshal`` format 2 writes no back-references, so the bytes do not depend on which
    objects happen to be shared; an interned and a non-interned copy of a string may still
    differ, which only costs a memo miss.
    """
    try:
        return marshal.dumps(value, 2)
    except (ValueError, RecursionError):  # a value marshal cannot write, or a cycle
        return None


_run_id = attrgetter("id")
_PLAIN_LEAVES = frozenset({str, int, float, bool, type(None)})


def _is_plain(value: Any) -> bool:
    """Dicts, lists and tuples of strings, ints, floats, bools and None, by exact type.

    Checked before a config is memoised under its :func:`_content_key` (runs are keyed by
    their MessagePack encoding instead, see :func:`_records`). Iterative, no recursion limit
    to meet; only called on values ``marshal`` could write, which are never cyclic.
    """
    stack = [value]
    pop, push = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            push(item.keys())
            push(item.values())
        elif kind is list or kind is tuple:
            push(item)
        elif kind not in _PLAIN_LEAVES:
            return False
    return True


_encode_run = msgspec.msgpack.Encoder().encode
_decode_run = msgspec.msgpack.Decoder().decode
_UNENCODABLE = (TypeError, ValueError, OverflowError, RecursionError)
"""What msgspec raises for a value it cannot encode: an unsupported type, a lone surrogate
(UnicodeEncodeError), an int beyond 64 bits, a cycle."""


def _run_key(run: dict[str, Any]) -> bytes | None:
    """The run's memo key (its MessagePack bytes), None when it has none."""
    try:
        return _encode_run(run)
    except _UNENCODABLE:
        return None


def _memo_put(memo: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value


def _records(space: SearchSpace, runs: Any) -> list[RunRecord]:
    """:func:`to_run_record` of each run, memoised by the run's content, and ids checked.

    A sweep's loop passes the same runs again and again, and validating and copying each
    was most of library mode's cost at 1,000 runs. A dict run is read as data: as its
    MessagePack encoding (:data:`_encode_run`) says it is, and the memo is keyed by those
    bytes. The record is built from the decoding of the key, a private copy, so later changes
    to the caller's objects cannot reach it, and a run changed in place is a new key. The
    encoding keeps what the engine can tell apart (``True``, ``1`` and ``1.0`` are three
    values; key order, ``-0.0``, NaN) and reads what JSON cannot tell apart as JSON would (a
    tuple as a list, an ``IntEnum`` as its int): every record is a function of its key alone.
    A run MessagePack cannot encode (a numpy scalar, an int beyond 64 bits) is read as it is,
    every time. (msgspec's encoder: ~0.6 us per run against marshal's ~2.5 us, which was a
    sixth of a suggestion at 1,000 runs. Not by identity checked with ``==``: ``==`` cannot
    tell ``True`` from ``1``.)
    """
    if isinstance(runs, (str, bytes, Mapping)) or not isinstance(runs, Sequence):
        raise EngineInputError(f"runs: must be a list of run mappings (got {type(runs).__name__})")
    memo = _record_memo.get(space)
    if memo is None:
        memo = {}
        _memo_put(_record_memo, space, memo, _MEMO_CONFIGS)
    all_dicts = set(map(type, runs)) <= {dict}
    if all_dicts:
        reused = _from_last_list(space, memo, runs)
        if reused is not None:
            return reused
    records, keys = _read_runs(space, memo, runs, all_dicts)
    ids = set(map(_run_id, records))
    if len(ids) < len(records):
        _raise_duplicate(list(map(_run_id, records)))
    if all_dicts and None not in keys:
        _memo_put(_last_list, space, _LastList(cast("list[bytes]", keys), list(records), ids),
                  _MEMO_CONFIGS)
    return records


def _read_runs(space: SearchSpace, memo: dict[bytes, RunRecord], runs: Sequence[Any],
               all_dicts: bool, first: int = 0) -> tuple[list[RunRecord], list[bytes | None]]:
    """The records of ``runs`` (``runs[first]`` onwards of the caller's list, for error
    messages) and their memo keys, None for a run without one."""
    # The common case (every run a dict seen before) in C-level passes: a loop computing each
    # run's key cost as much again as the encoding itself. Only dicts are keyed: msgspec
    # encodes a dataclass (a RunRecord) as a map too.
    keys: list[bytes | None]
    if all_dicts:
        try:
            keys = list(map(_encode_run, runs))
        except _UNENCODABLE:
            keys = [_run_key(run) for run in runs]
    else:
        keys = [_run_key(run) if type(run) is dict else None for run in runs]
    found = cast("dict[bytes | None, RunRecord]", memo).get
    records: list[RunRecord | None] = list(map(found, keys))
    for i, record in enumerate(records):
        if record is not None:
            continue
        key = keys[i]
        where = f"runs[{first + i}]"
        if key is not None:
            # Private and never changed: the engine may remember results per record.
            record = _build_record(space, _decode_run(key), where, SharedRunRecord)
            _memo_put(memo, key, record, _MEMO_RECORDS)
        else:
            record = to_run_record(space, runs[i], where)
        records[i] = record
    return cast("list[RunRecord]", records), keys  # every None was replaced


def _raise_duplicate(ids: Sequence[str]) -> None:
    """EngineInputError naming the first run whose id an earlier run has."""
    seen: dict[str, int] = {}
    for i, run_id in enumerate(ids):
        if run_id in seen:
            raise EngineInputError(
                f"runs[{i}].id: {run_id!r} is also the id of runs[{seen[run_id]}]"
            )
        seen[run_id] = i


class _LastList:
    """The run list :func:`_records` last read for a space (every run a dict): its runs'
    encodings back to back (the body of the list's MessagePack encoding), where each run's
    encoding ends in it, their records and their ids. Never handed out: callers get copies
    of ``records``."""

    __slots__ = ("body", "ends", "ids", "records")

    def __init__(self, keys: list[bytes], records: list[RunRecord], ids: set[str]) -> None:
        self.body = b"".join(keys)
        self.ends = list(itertools.accumulate(map(len, keys)))
        self.records = records
        self.ids = ids

    def same_leading_runs(self, whole: bytes, start: int) -> int:
        """How many leading runs of a list encoded as ``whole`` (items from ``start``) are,
        run for run, this list's: its first k runs' bytes found there, for the largest k
        (found by bisection over the runs' ends; MessagePack is self-delimiting, so equal
        bytes are equal runs)."""
        body, ends = self.body, self.ends
        if whole.startswith(body, start):
            return len(ends)
        lo, hi = 0, len(ends) - 1  # the first lo runs are the same; run hi is not
        view = memoryview(body)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if whole.startswith(view[: ends[mid - 1]], start):
                lo = mid
            else:
                hi = mid - 1
        return lo


_last_list: dict[SearchSpace, _LastList] = {}


def _array_header(n: int) -> int:
    """Bytes of a MessagePack array header for ``n`` items."""
    return 1 if n < 16 else 3 if n < 65536 else 5


def _from_last_list(space: SearchSpace, memo: dict[bytes, RunRecord],
                    runs: Sequence[dict[str, Any]]) -> list[RunRecord] | None:
    """The records of ``runs`` with those of its leading runs that are, run for run, the
    list last read for ``space`` taken from that read; None without such a list (or when
    ``runs`` cannot be encoded).

    A sweep's loop passes the last list with runs appended, or with a running run changed
    near its end. The list is encoded in one call, and a byte comparison with the last
    list's encoding tells how many of its first runs are the same data (an array's encoding
    is its items' encodings back to back): their records and ids are taken as they are, and
    only the rest is read, each run by its own key. ~0.3 ms at 1,000 runs against ~0.65 ms for
    a key per run, their memo lookups and a new id set. The records are those keying each run
    finds (a record is a function of its run's encoding), so the answer is the same either way.
    """
    last = _last_list.get(space)
    if last is None:
        return None
    try:
        whole = _encode_run(runs)
    except _UNENCODABLE:
        return None
    same = min(last.same_leading_runs(whole, _array_header(len(runs))), len(runs))
    if same < len(last.ends):  # a shorter list, or a run changed: keep the common part
        del last.records[same:], last.ends[same:]
        last.body = last.body[: last.ends[-1] if same else 0]
        last.ids = set(map(_run_id, last.records))
    if same < len(runs):
        added, keys = _read_runs(space, memo, runs[same:], True, same)
        added_ids = list(map(_run_id, added))
        if not last.ids.isdisjoint(added_ids) or len(set(added_ids)) < len(added_ids):
            _raise_duplicate([*map(_run_id, last.records), *added_ids])
        # Every run was encodable as part of the list, so each has its key.
        tail = cast("list[bytes]", keys)
        offset = last.ends[-1] if last.ends else 0
        last.ends.extend(offset + end for end in itertools.accumulate(map(len, tail)))
        last.body += b"".join(tail)
        last.records.extend(added)
        last.ids.update(added_ids)
    return list(last.records)


def next_run(
    config: SweepConfig | Mapping[str, Any] | str,
    runs: Sequence[Mapping[str, Any] | RunRecord],
    seed: int | None = None,
) -> dict[str, Any] | None:
    """The config of the next run to start, nested as the sweep's parameters are, or None.

    None means the method has nothing left to suggest (a grid whose every point is taken or
    held by a running run). ``seed`` (a non-negative int) makes the answer reproducible; use a
    different one per call for random search, or leave it out to use ``len(runs)``. A config
    that is not valid raises :class:`controller.core.errors.ConfigError` listing every problem;
    a malformed run raises :class:`EngineInputError`. ``run_cap`` and ``metric.target`` are
    not enforced here: the caller decides when to stop asking.
    """
    parsed = _config(config)
    records = _records(parsed.space, runs)
    if seed is None:
        seed = len(records)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise EngineInputError(f"seed: must be a non-negative int (got {seed!r})")
    flat = _engine.next_suggestion(parsed, records, seed)
    return None if flat is None else parsed.space.nest(flat)


def stop_runs(
    config: SweepConfig | Mapping[str, Any] | str,
    runs: Sequence[Mapping[str, Any] | RunRecord],
) -> list[str]:
    """Ids of the ``running`` runs that early termination (hyperband) stops now.

    [] when the config has no ``early_terminate``. The caller does the stopping and should
    then mark those runs ``stopped``.
    """
    parsed = _config(config)
    return _engine.runs_to_stop(parsed, _records(parsed.space, runs))
