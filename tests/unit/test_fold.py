"""The fold: folding any prefix of a valid event stream gives the state at that seq.

Valid streams come from a small simulator that plays random commands against the State using
the same pure decision helpers the controller uses, so hypothesis explores real sequences of
sweeps, agents, grid assignments, retries, metrics, crashes and state changes.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core import events as ev
from controller.core.state import (
    AGENT_ACTIVE,
    RUN_RUNNING,
    SWEEP_FINAL,
    SWEEP_PAUSED,
    SWEEP_RUNNING,
    EventOrderError,
    State,
    apply,
    cap_reached,
    derive_seed,
    finish_reason,
    fold,
    fold_stored,
    metric_records,
    next_grid_index,
    run_id_for,
)
from tests.unit.replay_rows import replay_chunk

Action = tuple[int, int, int]
_KINDS = (0, 1, 2, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 6, 7, 8, 2, 3, 4)
"""Action kinds by weight: 0 create a sweep, 1 register an agent, 2 assign a run, 3 metrics,
4 end a run, 5 crash one, 6 pause/resume, 7 stop/cancel, 8 an agent goes away."""


def simulate(actions: list[Action]) -> tuple[list[ev.Event], list[str]]:
    """(events, JSON of the state after each event; index 0 is the empty state)."""
    state = State()
    events: list[ev.Event] = []
    snapshots = [json.dumps(state.to_json(), sort_keys=True)]
    clock = [0.0]

    def emit(event: ev.Event) -> None:
        apply(state, event)
        events.append(event)
        snapshots.append(json.dumps(state.to_json(), sort_keys=True))

    def now() -> float:
        clock[0] += 1.0
        return clock[0]

    def maybe_finish(sweep_id: str) -> None:
        reason = finish_reason(state.sweeps[sweep_id])
        if reason:
            emit(ev.SweepFinished(time=now(), sweep_id=sweep_id, reason=reason))

    for kind, x, y in actions:
        if kind == 0 or not state.sweeps:
            sweep_id = f"s{len(state.sweeps):07d}"
            grid = x % 2 == 0
            config: dict[str, Any] = {"method": "grid" if grid else "random"}
            if y % 4 == 1:
                config["early_terminate"] = {"type": "hyperband", "min_iter": 1}
            emit(ev.SweepCreated(
                time=now(), sweep_id=sweep_id, config=config,
                seed=y, method="grid" if grid else "random", name="",
                grid_size=(x % 6) + 1 if grid else None,
                run_cap=(y % 7) + 1 if y % 3 == 0 else None, metric_name="loss",
                metric_goal="minimize" if y % 2 else "maximize",
                metric_target=0.05 if y % 5 == 0 else None, warnings=[]))
            continue
        sweep = state.sweeps[sorted(state.sweeps)[x % len(state.sweeps)]]
        agents = [state.agents[a] for a in sweep.agent_ids
                  if state.agents[a].state == AGENT_ACTIVE]
        running = [state.runs[r] for r in sweep.run_ids if state.runs[r].state == RUN_RUNNING]
        kind = _KINDS[kind % len(_KINDS)]
        if kind == 1 or (kind == 2 and not agents):
            emit(ev.AgentRegistered(time=now(), sweep_id=sweep.id,
                                    agent_id=f"agent-{len(state.agents):04d}", hostname="h",
                                    pid=y))
        elif kind == 2:
            if sweep.state != SWEEP_RUNNING or cap_reached(sweep):
                continue
            index = len(sweep.run_ids)
            grid_index = next_grid_index(sweep) if sweep.method == "grid" else None
            if sweep.method == "grid" and grid_index is None:
                continue
            emit(ev.RunAssigned(time=now(), sweep_id=sweep.id, run_id=run_id_for(sweep.id, index),
                                run_index=index, agent_id=agents[y % len(agents)].id,
                                params={"p": grid_index if grid_index is not None else y},
                                grid_index=grid_index, suggestion_seed=derive_seed(sweep.seed,
                                                                                    index)))
        elif kind == 3 and running:
            run = running[y % len(running)]
            seq = run.next_metric_seq - (y % 2)  # sometimes re-send the last record
            records = [{"seq": max(seq, 0) + i, "step": seq + i,
                        "values": {"loss": (y % 10) / 10 + i, "acc": float(i)}, "time": now()}
                       for i in range(x % 3 + 1)]
            emit(ev.MetricsLogged.from_records(time=now(), sweep_id=sweep.id, run_id=run.id,
                                               records=records))
            if y % 4 == 0 and run.stop_reason is None:
                emit(ev.RunStopRequested(time=now(), sweep_id=sweep.id, run_id=run.id,
                                         reason="hyperband"))
            maybe_finish(sweep.id)
        elif kind == 4 and running:
            run = running[y % len(running)]
            end_state = ("finished", "failed", "stopped")[x % 3]
            emit(ev.RunEnded(time=now(), sweep_id=sweep.id, run_id=run.id, state=end_state,
                             exit_code=None if end_state == "stopped" else x % 2,
                             reason=end_state))
            maybe_finish(sweep.id)
        elif kind == 5 and running:
            emit(ev.RunCrashed(time=now(), sweep_id=sweep.id, run_id=running[y % len(running)].id,
                               reason="agent lost"))
            maybe_finish(sweep.id)
        elif kind == 6 and sweep.state not in SWEEP_FINAL:
            if sweep.state == SWEEP_PAUSED:
                emit(ev.SweepResumed(time=now(), sweep_id=sweep.id, reason="user"))
            else:
                emit(ev.SweepPaused(time=now(), sweep_id=sweep.id, reason="user"))
        elif kind == 7 and sweep.state not in SWEEP_FINAL and y % 3 == 0:
            if y % 2:
                emit(ev.SweepStopped(time=now(), sweep_id=sweep.id, reason="user"))
            else:
                emit(ev.SweepCancelled(time=now(), sweep_id=sweep.id, reason="user"))
                for run in running:
                    emit(ev.RunStopRequested(time=now(), sweep_id=sweep.id, run_id=run.id,
                                             reason="cancelled"))
        elif kind == 8 and agents:
            agent = agents[y % len(agents)]
            gone: ev.Event = (ev.AgentLost if x % 2 else ev.AgentLeft)(
                time=now(), sweep_id=sweep.id, agent_id=agent.id, reason="gone")
            emit(gone)
            for run_id in sorted(agent.running):
                emit(ev.RunCrashed(time=now(), sweep_id=sweep.id, run_id=run_id, reason="gone"))
            maybe_finish(sweep.id)
    return events, snapshots


actions_strategy = st.lists(
    st.tuples(st.integers(0, 19), st.integers(0, 100), st.integers(0, 100)), max_size=80)


@settings(max_examples=150, deadline=None)
@given(actions_strategy)
def test_folding_any_prefix_gives_the_state_at_that_seq(actions: list[Action]) -> None:
    events, snapshots = simulate(actions)
    for n in range(len(events) + 1):
        state = fold(events[:n])
        assert state.seq == n
        assert json.dumps(state.to_json(), sort_keys=True) == snapshots[n]


@settings(max_examples=100, deadline=None)
@given(actions_strategy)
def test_replaying_events_read_back_from_json_gives_an_equal_state(
        actions: list[Action]) -> None:
    events, _ = simulate(actions)
    stored = [ev.encode(e) for e in events]
    decoded = [ev.decode(t, v, time, json.loads(json.dumps(data)))
               for t, v, time, _, data in stored]
    assert fold(decoded) == fold(events)
    # Replay's path: rows folded as stored, without Event objects, give the same state.
    replayed = State()
    fold_stored(replayed, [(t, v, time, json.loads(json.dumps(data)))
                           for t, v, time, _, data in stored])
    assert replayed == fold(events)
    # And as the store hands them to replay: MetricsLogged read lean (no dict per record).
    parsed = replay_chunk([(t, v, time, data) for t, v, time, _, data in stored])
    assert [type(row) is tuple for row in parsed] == \
        [not isinstance(e, ev.MetricsLogged) for e in events]
    lean = State()
    fold_stored(lean, parsed)
    assert lean == fold(events)


def test_folding_stored_rows_checks_them_as_decoding_does() -> None:
    created = ev.encode(ev.SweepCreated(
        time=1.0, sweep_id="s1", config={}, seed=1, method="random", name="", grid_size=None,
        run_cap=None, metric_name="", metric_goal="", metric_target=None, warnings=[]))
    t, v, time, _, data = created
    with pytest.raises(ev.EventDecodeError, match="unexpected keyword argument 'extra'"):
        fold_stored(State(), [(t, v, time, {**data, "extra": 1})])
    with pytest.raises(ev.EventDecodeError, match="missing 1 required keyword-only argument"):
        fold_stored(State(), [(t, v, time, {k: x for k, x in data.items() if k != "seed"})])
    with pytest.raises(ev.EventDecodeError, match="newer than this controller"):
        fold_stored(State(), [(t, v + 1, time, data)])
    with pytest.raises(ev.EventDecodeError, match="unknown event type 'Nope'"):
        fold_stored(State(), [("Nope", 1, time, data)])
    state = State()
    fold_stored(state, [(t, v, time, data)])
    assert state.seq == 1 and state.sweeps["s1"].seed == 1


@settings(max_examples=100, deadline=None)
@given(actions_strategy, st.data())
def test_snapshot_then_tail_equals_full_replay(actions: list[Action], data: Any) -> None:
    events, _ = simulate(actions)
    cut = data.draw(st.integers(0, len(events)))
    snapshot = json.loads(json.dumps(fold(events[:cut]).to_json()))
    assert fold(events[cut:], State.from_json(snapshot)) == fold(events)


@settings(max_examples=150, deadline=None)
@given(actions_strategy)
def test_grid_invariants_hold_in_every_state(actions: list[Action]) -> None:
    events, _ = simulate(actions)
    state = State()
    for event in events:
        apply(state, event)
        for sweep in state.sweeps.values():
            runs = [state.runs[r] for r in sweep.run_ids]
            assert sum(sweep.counts.values()) == len(runs)
            assert Counter(r.state for r in runs) == {k: v for k, v in sweep.counts.items() if v}
            if sweep.method != "grid":
                continue
            per_point = Counter(r.grid_index for r in runs)
            assert max(per_point.values(), default=0) <= 2, "a point served more than twice"
            held = [r.grid_index for r in runs if r.state == RUN_RUNNING]
            assert len(held) == len(set(held)), "a point held by two running runs"
            done = [r.grid_index for r in runs if r.state in ("finished", "stopped")]
            assert len(done) == len(set(done)), "a completed point served again"
            assert sweep.grid_held == {r.grid_index: r.id for r in runs
                                       if r.state == RUN_RUNNING}


def _created(sweep_id: str = "s0000000", **overrides: Any) -> ev.SweepCreated:
    fields: dict[str, Any] = dict(
        time=1.0, sweep_id=sweep_id, config={}, seed=1, method="grid", name="",
        grid_size=3, run_cap=None, metric_name="loss", metric_goal="minimize",
        metric_target=None, warnings=[])
    fields.update(overrides)
    return ev.SweepCreated(**fields)


def _assigned(index: int, grid_index: int | None) -> ev.RunAssigned:
    return ev.RunAssigned(time=2.0, sweep_id="s0000000", run_id=run_id_for("s0000000", index),
                          run_index=index, agent_id="agent-0001", params={"p": grid_index},
                          grid_index=grid_index, suggestion_seed=0)


def _ended(index: int, state: str) -> ev.RunEnded:
    return ev.RunEnded(time=3.0, sweep_id="s0000000", run_id=run_id_for("s0000000", index),
                       state=state, exit_code=0, reason="")


def test_a_failed_grid_point_is_reserved_once_before_new_points() -> None:
    state = fold([_created(), _assigned(0, 0), _ended(0, "failed")])
    sweep = state.sweeps["s0000000"]
    assert next_grid_index(sweep) == 0
    apply(state, _assigned(1, 0))
    assert next_grid_index(sweep) == 1
    apply(state, _ended(1, "failed"))
    assert next_grid_index(sweep) == 1, "a second failure is final"


def test_grid_finishes_only_when_every_point_is_done_and_none_held() -> None:
    state = fold([_created(grid_size=2), _assigned(0, 0), _assigned(1, 1)])
    sweep = state.sweeps["s0000000"]
    assert next_grid_index(sweep) is None
    assert finish_reason(sweep) is None
    apply(state, _ended(0, "finished"))
    apply(state, _ended(1, "failed"))
    assert finish_reason(sweep) is None, "the failed point is still to be re-served"
    apply(state, _assigned(2, 1))
    apply(state, _ended(2, "finished"))
    assert finish_reason(sweep) == "grid exhausted (2 points)"


def test_run_cap_finishes_once_no_capped_run_is_running() -> None:
    state = fold([_created(method="random", grid_size=None, run_cap=1), _assigned(0, None)])
    sweep = state.sweeps["s0000000"]
    assert cap_reached(sweep)
    assert finish_reason(sweep) is None
    apply(state, _ended(0, "finished"))
    assert finish_reason(sweep) == "run_cap reached (1 runs)"


def _logged(records: list[dict[str, Any]]) -> ev.MetricsLogged:
    return ev.MetricsLogged.from_records(time=3.0, sweep_id="s0000000", run_id="s0000000-0000",
                                         records=records)


def test_metric_target_finishes_at_once() -> None:
    state = fold([_created(method="random", grid_size=None, metric_target=0.1),
                  _assigned(0, None),
                  _logged([{"seq": 0, "step": 0, "values": {"loss": 0.05}, "time": 3.0}])])
    reason = finish_reason(state.sweeps["s0000000"])
    assert reason is not None and "metric target reached" in reason


def test_summary_is_last_value_and_best_follows_the_goal() -> None:
    records = [{"seq": i, "step": i, "values": {"loss": v}, "time": 3.0}
               for i, v in enumerate([0.5, 0.2, 0.4])]
    state = fold([_created(method="random", grid_size=None), _assigned(0, None),
                  _logged(records)])
    run = state.runs["s0000000-0000"]
    assert run.summary == {"loss": 0.4}
    assert run.best_metric == 0.2
    assert state.sweeps["s0000000"].best_run_id == run.id
    assert run.metric_count == 3
    assert run.metric_values == []  # no early_terminate: nothing needs the values in order
    tracked = fold([_created(method="random", grid_size=None,
                             config={"early_terminate": {"type": "hyperband"}}),
                    _assigned(0, None),
                    _logged(records)]).runs["s0000000-0000"]
    assert tracked.metric_values == [0.5, 0.2, 0.4] and tracked.best_metric == 0.2


@settings(max_examples=100, deadline=None)
@given(actions_strategy)
def test_the_records_read_back_from_the_log_are_what_the_state_summarises(
        actions: list[Action]) -> None:
    """The State keeps no records; what it keeps must follow from the ones the log gives back
    for each run (``metric_records``, what GetRunMetrics serves)."""
    events, _ = simulate(actions)
    state = fold(events)
    for run in state.runs.values():
        sweep = state.sweeps[run.sweep_id]
        logged = [e for e in events if isinstance(e, ev.MetricsLogged) and e.run_id == run.id]
        records = metric_records(logged)
        assert len(records) == run.metric_count
        assert [r["seq"] for r in records] == sorted({r["seq"] for r in records})
        assert run.next_metric_seq == (records[-1]["seq"] + 1 if records else 0)
        summary: dict[str, Any] = {}
        for record in records:
            summary.update(record["values"])
        assert summary == run.summary
        values = [r["values"]["loss"] for r in records if "loss" in r["values"]]
        assert run.metric_values == (values if sweep.tracks_iterations else [])
        pick = max if sweep.metric_goal == "maximize" else min
        assert run.best_metric == (pick(values) if values else None)
        if records:
            middle = records[len(records) // 2]["seq"]
            assert metric_records(logged, middle, 2) == \
                [r for r in records if r["seq"] >= middle][:2]


def test_ending_a_run_twice_is_an_order_error() -> None:
    state = fold([_created(), _assigned(0, 0), _ended(0, "finished")])
    with pytest.raises(EventOrderError, match="ended twice"):
        apply(state, _ended(0, "failed"))


def test_handing_out_a_held_grid_point_is_an_order_error_and_changes_nothing() -> None:
    state = fold([_created(), _assigned(0, 0)])
    before = json.dumps(state.to_json(), sort_keys=True)
    with pytest.raises(EventOrderError, match="while held"):
        apply(state, _assigned(1, 0))
    assert json.dumps(state.to_json(), sort_keys=True) == before


def test_suggestion_seeds_are_deterministic_and_distinct() -> None:
    seeds = [derive_seed(42, i) for i in range(100)]
    assert seeds == [derive_seed(42, i) for i in range(100)]
    assert len(set(seeds)) == 100
    assert all(0 <= s < 2**63 for s in seeds)


@settings(max_examples=60, deadline=None)
@given(actions_strategy, st.data())
def test_a_snapshot_taken_mid_stream_is_not_changed_by_later_events(
        actions: list[Action], data: Any) -> None:
    events, snapshots = simulate(actions)
    cut = data.draw(st.integers(0, len(events)))
    state = fold(events[:cut])
    tree = state.to_json()
    fold(events[cut:], state)
    assert json.dumps(tree, sort_keys=True) == snapshots[cut]
