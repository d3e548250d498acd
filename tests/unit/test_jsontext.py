"""jsontext.dumps: orjson's text where it reads back as json's, json's everywhere else."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest

from controller.jsontext import dumps


def reference(value: Any) -> Any:
    return json.loads(json.dumps(value))


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and 1 and 1.0 told apart."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize("value", [
    {"run_id": "abc-0001", "grid_index": None, "params": {"lr": 1e-05, "opt": "adam", "n": 3}},
    {"values": {"loss": float("nan"), "acc": float("inf"), "x": -float("inf"), "y": None}},
    [[1, [2, {"deep": float("nan")}]], None],
    {"big": 2**64, "small": -(2**63), "bigger": 10**30},
    {1: "int key", "x": {2.5: "float key"}},
    {"text": "caf\u00e9 \u2603 \"quoted\" \\\\ \n", "lone": "\ud800"},
    {"tuple": (1, 2.5, "x"), "neg_zero": -0.0, "float": 0.1 + 0.2, "huge": 1e300},
    {"enum": Colour.RED},
    float("nan"), None, 3, "plain",
])
def test_reads_back_as_json_dumps_would(value: Any) -> None:
    text = dumps(value)
    assert isinstance(text, str)
    assert same(json.loads(text), reference(value)), text


def test_nan_and_infinity_are_kept_not_turned_into_null() -> None:
    assert dumps({"loss": float("nan"), "up": float("inf")}) == '{"loss":NaN,"up":Infinity}'


def test_types_json_refuses_are_refused() -> None:
    import datetime

    with pytest.raises(TypeError):
        dumps({"when": datetime.datetime(2026, 1, 1)})
    with pytest.raises(TypeError):
        dumps({"set": {1, 2}})
