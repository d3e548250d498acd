"""JSON text for the event log and the API: orjson's speed, ``json``'s values.

Every event is encoded once when it is recorded and every run handed out carries its params
as JSON, so encoding is on the hot path of each suggestion; orjson does it in a tenth of the
time of ``json``. But ``json`` is the reference: the log is read back by ``json`` rules (NaN
and infinite metric values, integers of any size), and the two differ on a few inputs:

* orjson writes NaN and +-Infinity as ``null``; ``json`` writes ``NaN``/``Infinity``, which is
  what the log must keep (a NaN loss is a fact, not a missing value);
* orjson refuses integers beyond 64 bits, dict keys that are not strings, strings with lone
  surrogates, and (with the options below) subclasses, dataclasses and datetimes; ``json``
  converts keys to strings and raises on types it does not know.

:func:`dumps` uses orjson and falls back to ``json`` for all of these, so ``json.loads`` of its
text always equals ``json.loads(json.dumps(value))``. The texts differ only in spelling
(orjson writes UTF-8 where ``json`` writes ``\\u`` escapes, ``1e-05`` as ``0.00001``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=True).encode
"""Built once: ``json.dumps`` with arguments builds a new encoder per call."""
_OPTIONS = (orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_DATETIME)
"""Anything orjson would encode differently from ``json`` raises instead (no ``default``)."""


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``, read back by ``json.loads`` as ``json.dumps``' would be."""
    try:
        text = orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        return _ENCODE(value)
    if b"null" in text and _has_non_finite(value):
        return _ENCODE(value)
    return text.decode()


def _has_non_finite(value: Any) -> bool:
    """True when ``value`` holds a NaN or infinite float anywhere (orjson wrote it as null)."""
    kind = type(value)
    if kind is float:
        return value - value != 0.0  # inf - inf and nan - nan are nan
    if kind is dict:
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return False
    for item in items:
        kind = type(item)
        if kind is float:
            if item - item != 0.0:
                return True
        elif (kind is dict or kind is list or kind is tuple) and _has_non_finite(item):
            return True
    return False
