"""MetricsLogged by column (version 2): its fold's short cut gives exactly what folding the same
records one by one gives, on every path replay can take, and version 1 logs fold the same."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import jsontext
from controller.core import events as ev
from controller.core.state import State, _fold_metrics, _records, apply, fold, fold_stored
from controller.store.eventlog import LeanMetrics, LeanMetricsV1
from tests.unit.replay_rows import replay_chunk

SWEEP = "s0000000"
RUN = "s0000000-0000"
NAMES = ("loss", "acc", "lr")

_VALUE = st.one_of(
    st.floats(-100, 100),  # the usual case: the short cut takes these
    st.floats(),  # NaN, infinities, huge values whose sum overflows, -0.0
    st.integers(-(2**70), 2**70),  # ints become floats as the sweep metric, exactly as now
    st.booleans(),  # never a metric value, but kept in the summary
    st.none(),  # the name is absent from that record
)


@st.composite
def columns(draw: st.DrawFn) -> tuple[list[int], dict[str, list[Any]]]:
    """(seqs, values) of one event: mostly the service's shape (new seqs, increasing), often
    not (re-sends, seqs out of order or repeated)."""
    n = draw(st.integers(0, 6))
    if draw(st.booleans()):
        start = draw(st.integers(0, 20))
        steps = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
        seqs = [start + sum(steps[:i + 1]) - steps[0] for i in range(n)]
    else:
        seqs = draw(st.lists(st.integers(0, 25), min_size=n, max_size=n))
    names = draw(st.lists(st.sampled_from(NAMES), unique=True))
    values = {name: draw(st.lists(_VALUE, min_size=n, max_size=n)) for name in names}
    return seqs, values


def _start(metric_name: str, goal: str, tracks: bool) -> State:
    config: dict[str, Any] = {"early_terminate": {"type": "hyperband"}} if tracks else {}
    return fold([
        ev.SweepCreated(time=1.0, sweep_id=SWEEP, config=config, seed=1, method="random",
                        name="", grid_size=None, run_cap=None, metric_name=metric_name,
                        metric_goal=goal, metric_target=None, warnings=[]),
        ev.RunAssigned(time=2.0, sweep_id=SWEEP, run_id=RUN, run_index=0, agent_id="a",
                       params={}, grid_index=None, suggestion_seed=0),
    ])


def _event(seqs: list[int], values: dict[str, list[Any]]) -> ev.MetricsLogged:
    return ev.MetricsLogged(time=3.0, sweep_id=SWEEP, run_id=RUN, seqs=seqs, steps=seqs,
                            times=[3.0] * len(seqs), values=values)


def _text(state: State) -> str:
    """The state as sorted JSON: tells -0.0 from 0.0, 1 from 1.0 and True from 1, and NaN
    equals NaN (which ``==`` on the State cannot)."""
    return json.dumps(state.to_json(), sort_keys=True)


@settings(max_examples=400, deadline=None)
@given(metric_name=st.sampled_from(["loss", "acc", ""]),
       goal=st.sampled_from(["minimize", "maximize"]), tracks=st.booleans(),
       batches=st.lists(columns(), max_size=6))
def test_folding_columns_equals_folding_their_records_one_by_one(
        metric_name: str, goal: str, tracks: bool,
        batches: list[tuple[list[int], dict[str, list[Any]]]]) -> None:
    reference = _start(metric_name, goal, tracks)
    columnar = copy.deepcopy(reference)
    stored = copy.deepcopy(reference)
    lean = copy.deepcopy(reference)
    lean_v1 = copy.deepcopy(reference)
    for seqs, values in batches:
        _fold_metrics(reference, RUN, _records(seqs, values))
        reference.seq += 1
        event = _event(seqs, values)
        apply(columnar, event)
        # Replay's paths: the event's data as JSON, read as a dict, and read lean.
        text = jsontext.dumps(event.to_data())
        fold_stored(stored, [(event.TYPE, event.VERSION, 3.0, json.loads(text))])
        fold_stored(lean, replay_chunk([(event.TYPE, event.VERSION, 3.0, event.to_data())]))
        # The same records as a version 1 event (a log written before columns).
        old = {"sweep_id": SWEEP, "run_id": RUN, "records": event.records}
        fold_stored(lean_v1, replay_chunk([(event.TYPE, 1, 3.0, old)]))
    assert _text(columnar) == _text(reference)
    assert _text(lean_v1) == _text(reference)
    assert _text(stored) == _text(reference)
    assert _text(lean) == _text(reference)


def test_the_service_shape_of_event_is_read_lean_and_folded_by_column() -> None:
    event = ev.MetricsLogged.from_records(time=3.0, sweep_id=SWEEP, run_id=RUN, records=[
        {"seq": 0, "step": 0, "values": {"loss": 0.5, "acc": 0.1}, "time": 3.0},
        {"seq": 1, "step": 5, "values": {"acc": 0.2}, "time": 3.5},
        {"seq": 2, "step": 9, "values": {"loss": 0.25}, "time": 4.0}])
    assert event.values == {"loss": [0.5, None, 0.25], "acc": [0.1, 0.2, None]}
    [lean] = replay_chunk([(event.TYPE, event.VERSION, 3.0, event.to_data())])
    assert type(lean) is LeanMetrics
    state = _start("loss", "minimize", tracks=True)
    fold_stored(state, [lean])
    run = state.runs[RUN]
    assert run.summary == {"loss": 0.25, "acc": 0.2}
    assert (run.best_metric, run.metric_values) == (0.25, [0.5, 0.25])
    assert (run.metric_count, run.next_metric_seq, state.seq) == (3, 3, 3)


def test_a_version_1_event_is_read_lean_and_folded_as_its_upcast() -> None:
    records = [{"seq": 0, "step": 0, "values": {"loss": 0.5, "acc": 0.1}, "time": 3.0},
               {"seq": 1, "step": 5, "values": {"acc": 0.2}, "time": 3.5}]
    old = {"sweep_id": SWEEP, "run_id": RUN, "records": records}
    [row] = replay_chunk([("MetricsLogged", 1, 3.0, old)])
    assert row[:2] == ("MetricsLogged", 1) and type(row[3]) is LeanMetricsV1
    state = _start("loss", "minimize", tracks=True)
    fold_stored(state, [row])
    assert state == fold([ev.decode("MetricsLogged", 1, 3.0, old)],
                         _start("loss", "minimize", tracks=True))
    # A record the upcast refuses is not read lean: the general way names the problem.
    old["records"][1]["values"]["acc"] = None
    [row] = replay_chunk([("MetricsLogged", 1, 3.0, old)])
    assert type(row[3]) is dict
    with pytest.raises(ev.EventDecodeError, match="record seq 1 has no value for 'acc'"):
        fold_stored(_start("loss", "minimize", tracks=True), [row])


def test_records_give_back_what_the_event_was_made_of() -> None:
    records = [{"seq": 3, "step": 30, "values": {"loss": 0.5, "acc": 1.0}, "time": 3.0},
               {"seq": 4, "step": 40, "values": {"acc": 2.0}, "time": 4.0},
               {"seq": 5, "step": 50, "values": {}, "time": 5.0}]
    event = ev.MetricsLogged.from_records(time=9.0, sweep_id=SWEEP, run_id=RUN, records=records)
    assert event.records == records
    assert (event.seqs, event.steps, event.times) == ([3, 4, 5], [30, 40, 50], [3.0, 4.0, 5.0])


def test_a_version_1_event_is_upcast_to_columns() -> None:
    records = [{"seq": 0, "step": 0, "values": {"loss": 0.5}, "time": 3.0},
               {"seq": 1, "step": 1, "values": {"loss": math.inf, "acc": 2}, "time": 4.0}]
    old = {"sweep_id": SWEEP, "run_id": RUN, "records": records}
    event = ev.decode("MetricsLogged", 1, 5.0, old)
    assert event == ev.MetricsLogged(time=5.0, sweep_id=SWEEP, run_id=RUN, seqs=[0, 1],
                                     steps=[0, 1], times=[3.0, 4.0],
                                     values={"loss": [0.5, math.inf], "acc": [None, 2]})
    assert isinstance(event, ev.MetricsLogged) and event.records == records


@pytest.mark.parametrize(("data", "message"), [
    ({"sweep_id": SWEEP, "run_id": RUN}, r"fields \['run_id', 'sweep_id'\]"),
    ({"sweep_id": SWEEP, "run_id": RUN, "records": [{"seq": 0, "values": {}, "time": 1.0}]},
     "a record is not {seq, step, values, time}: KeyError"),
    ({"sweep_id": SWEEP, "run_id": RUN,
      "records": [{"seq": 4, "step": 4, "values": {"loss": None}, "time": 1.0}]},
     "record seq 4 has no value for 'loss' \\(null\\)"),
])
def test_a_version_1_event_that_cannot_be_upcast_is_a_decode_error(
        data: dict[str, Any], message: str) -> None:
    with pytest.raises(ev.EventDecodeError, match=message):
        ev.decode("MetricsLogged", 1, 5.0, data)


def test_columns_of_different_lengths_are_a_decode_error() -> None:
    data = {"sweep_id": SWEEP, "run_id": RUN, "seqs": [0, 1], "steps": [0, 1],
            "times": [1.0, 1.0], "values": {"loss": [0.5]}}
    with pytest.raises(ev.EventDecodeError, match="one entry per record"):
        ev.decode("MetricsLogged", 2, 5.0, data)
    with pytest.raises(ev.EventDecodeError, match="one entry per record"):
        fold_stored(_start("loss", "minimize", False), [("MetricsLogged", 2, 5.0, data)])
