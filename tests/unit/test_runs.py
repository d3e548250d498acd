"""RunRecord's condensed form (what the controller's State keeps: summary, the metric's best and,
for hyperband, its values in order) answers the engine's questions as the full history does."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from controller.core.runs import (
    RunRecord,
    best_value,
    final_value,
    is_metric_value,
    metric_history,
    reported_metric,
)

value = st.one_of(st.floats(-10, 10), st.sampled_from([math.nan, math.inf, -math.inf]),
                  st.integers(-5, 5))
record = st.dictionaries(st.sampled_from(["loss", "acc"]), value, max_size=2)


def condensed(full: RunRecord, name: str, goal: str, keep_values: bool) -> RunRecord:
    """What the controller builds from its State for ``full``."""
    summary: dict[str, Any] = {}
    for r in full.history:
        summary.update({k: v for k, v in r.items() if k != "_step"})
    values = [float(r[name]) for r in full.history if is_metric_value(r.get(name))]
    out = RunRecord(id=full.id, params=full.params, state=full.state, summary=summary)
    if keep_values:
        out.metric_values[name] = values
    if values:
        out.best[name] = (max if goal == "maximize" else min)(values)
    return out


@given(st.lists(record, max_size=12), st.sampled_from(["minimize", "maximize"]), st.booleans())
def test_the_condensed_run_answers_as_the_full_history(
        records: list[dict[str, Any]], goal: str, keep_values: bool) -> None:
    history = [{**r, "_step": i} for i, r in enumerate(records)]
    summary: dict[str, Any] = {}
    for r in records:
        summary.update(r)
    full = RunRecord(id="r", params={}, state="finished", summary=summary, history=history)
    small = condensed(full, "loss", goal, keep_values)
    assert best_value(small, "loss", goal) == best_value(full, "loss", goal)
    for name in ("loss", "acc", "other"):
        assert reported_metric(small, name) == reported_metric(full, name)
    if keep_values:
        assert metric_history(small, "loss") == metric_history(full, "loss")
        assert final_value(small, "loss") == final_value(full, "loss")
        # A copy: the caller may change it without changing the run.
        metric_history(small, "loss").append(1.0)
        assert metric_history(small, "loss") == metric_history(full, "loss")
