"""Events: every type survives encode -> JSON -> decode; bad rows fail with a clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.core import events as ev

SAMPLES: list[ev.Event] = [
    ev.SweepCreated(time=1.0, sweep_id="abcd1234", config={"method": "grid"}, seed=7,
                    method="grid", name="n", grid_size=4, run_cap=None, metric_name="loss",
                    metric_goal="minimize", metric_target=0.1, warnings=["w"]),
    ev.SweepPaused(time=2.0, sweep_id="abcd1234", reason="r"),
    ev.SweepResumed(time=2.0, sweep_id="abcd1234", reason="r"),
    ev.SweepStopped(time=2.0, sweep_id="abcd1234", reason="r"),
    ev.SweepCancelled(time=2.0, sweep_id="abcd1234", reason="r"),
    ev.SweepFinished(time=2.0, sweep_id="abcd1234", reason="r"),
    ev.AgentRegistered(time=3.0, sweep_id="abcd1234", agent_id="agent-0001", hostname="h",
                       pid=12),
    ev.AgentLost(time=3.0, sweep_id="abcd1234", agent_id="agent-0001", reason="silent"),
    ev.AgentLeft(time=3.0, sweep_id="abcd1234", agent_id="agent-0001", reason="bye"),
    ev.RunAssigned(time=4.0, sweep_id="abcd1234", run_id="abcd1234-0000", run_index=0,
                   agent_id="agent-0001", params={"a": 1, "n": {"b": "x"}}, grid_index=0,
                   suggestion_seed=99),
    ev.RunStarted(time=5.0, sweep_id="abcd1234", run_id="abcd1234-0000", pid=4242),
    ev.MetricsLogged.from_records(time=6.0, sweep_id="abcd1234", run_id="abcd1234-0000",
                     records=[{"seq": 0, "step": 0, "values": {"loss": 0.5}, "time": 6.0}]),
    ev.RunStopRequested(time=7.0, sweep_id="abcd1234", run_id="abcd1234-0000", reason="hb"),
    ev.RunEnded(time=8.0, sweep_id="abcd1234", run_id="abcd1234-0000", state="finished",
                exit_code=0, reason="exit status 0"),
    ev.RunCrashed(time=8.0, sweep_id="abcd1234", run_id="abcd1234-0000", reason="lost"),
]


def test_every_event_type_has_a_sample() -> None:
    assert {type(e) for e in SAMPLES} == set(ev.EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TYPE)
def test_event_round_trips_through_json(event: ev.Event) -> None:
    type_name, version, time, sweep_id, data = ev.encode(event)
    assert "time" not in data
    assert data["sweep_id"] == sweep_id == event.sweep_id
    decoded = ev.decode(type_name, version, time, json.loads(json.dumps(data)))
    assert decoded == event


def test_events_are_immutable() -> None:
    event = ev.SweepPaused(time=1.0, sweep_id="s", reason="r")
    with pytest.raises(AttributeError):
        event.reason = "changed"  # type: ignore[misc]


def test_unknown_type_is_a_decode_error() -> None:
    with pytest.raises(ev.EventDecodeError, match="unknown event type 'Nope'"):
        ev.decode("Nope", 1, 0.0, {})


def test_newer_version_than_the_code_is_a_decode_error() -> None:
    with pytest.raises(ev.EventDecodeError, match="newer than this controller"):
        ev.decode("SweepPaused", 2, 0.0, {"sweep_id": "s", "reason": "r"})


def test_missing_or_extra_fields_are_decode_errors() -> None:
    with pytest.raises(ev.EventDecodeError, match="SweepPaused v1"):
        ev.decode("SweepPaused", 1, 0.0, {"sweep_id": "s"})
    with pytest.raises(ev.EventDecodeError, match="SweepPaused v1"):
        ev.decode("SweepPaused", 1, 0.0, {"sweep_id": "s", "reason": "r", "extra": 1})


def test_old_versions_are_upcast_step_by_step(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend SweepPaused is at version 3 and v1 lacked "reason", v2 called it "why".
    monkeypatch.setattr(ev.SweepPaused, "VERSION", 3)

    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "why": "(unknown)"}

    def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        out["reason"] = out.pop("why")
        return out

    monkeypatch.setitem(ev._UPCASTERS, ("SweepPaused", 1), v1_to_v2)
    monkeypatch.setitem(ev._UPCASTERS, ("SweepPaused", 2), v2_to_v3)
    event = ev.decode("SweepPaused", 1, 5.0, {"sweep_id": "s"})
    assert event == ev.SweepPaused(time=5.0, sweep_id="s", reason="(unknown)")


def test_a_missing_upcaster_is_a_decode_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev.SweepPaused, "VERSION", 2)
    with pytest.raises(ev.EventDecodeError, match="no upcaster for SweepPaused version 1"):
        ev.decode("SweepPaused", 1, 0.0, {"sweep_id": "s", "reason": "r"})
