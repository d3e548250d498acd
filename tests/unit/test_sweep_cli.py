"""The `sweep` client's rendering, JSON forms and argument handling, without a controller.

Anything that needs a controller to answer lives in tests/integration/test_sweep_cli.py; here a
closed loopback port stands in for "no controller" where a test must prove no call was needed.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import grpc
import pytest

import opensweep
from controller.cli import sweep_main
from controller.client import ControllerError, describe_rpc_error
from controller.core.errors import ConfigError
from controller.sweep_cli import (
    EXIT_INVALID,
    EXIT_UNREACHABLE,
    event_json,
    format_duration,
    format_params,
    format_table,
    render_event,
    render_list,
    render_runs,
    render_show,
    run_json,
    sweep_json,
)
from opensweep.v1 import sweeps_pb2

BAD_CONFIG = """\
method: grid
metric: {name: loss, goal: minimise}
parameters:
  lr: {min: 0.1, max: 0.01}
  batch: {values: []}
"""


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_sweep(**overrides: object) -> sweeps_pb2.Sweep:
    sweep = sweeps_pb2.Sweep(
        id="k3v9x0qa",
        state=sweeps_pb2.SWEEP_STATE_RUNNING,
        method="grid",
        name="lr-search",
        config_json='{"method": "grid", "parameters": {"x": {"values": [1, 2]}}}',
        expected_run_count=12,
        run_counts=sweeps_pb2.RunCounts(running=2, finished=5, failed=1),
        metric_name="loss",
        metric_goal="minimize",
        best_run_id="k3v9x0qa-0003",
        best_metric=0.125,
        created_at=1_700_000_000.0,
        warnings=["ignored key 'project'"],
        seed=8841,
        log_seq=57,
    )
    for key, value in overrides.items():
        setattr(sweep, key, value)
    return sweep


def make_run(index: int, **overrides: Any) -> sweeps_pb2.Run:
    fields: dict[str, Any] = dict(
        id=f"k3v9x0qa-{index:04d}",
        sweep_id="k3v9x0qa",
        state=sweeps_pb2.RUN_STATE_FINISHED,
        config_json=json.dumps({"lr": 0.01 * index, "opt": {"name": "adam"}}),
        agent_id="agent-1",
        grid_index=index,
        summary={"loss": 0.5, "acc": 0.9},
        best_metric=0.5 / (index + 1),
        metric_count=10,
        reason="exit status 0",
        exit_code=0,
        created_at=1_700_000_000.0,
        ended_at=1_700_000_065.0,
    )
    fields.update(overrides)
    return sweeps_pb2.Run(**fields)


# --------------------------------------------------------------------- JSON forms


def test_sweep_json_has_the_documented_fields() -> None:
    body = sweep_json(make_sweep())
    assert body == {
        "id": "k3v9x0qa",
        "name": "lr-search",
        "state": "running",
        "state_reason": None,
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "expected_run_count": 12,
        "run_counts": {"running": 2, "finished": 5, "failed": 1, "crashed": 0, "stopped": 0},
        "run_count": 8,
        "best_run": {"id": "k3v9x0qa-0003", "metric": 0.125, "config": None},
        "created_at": 1_700_000_000.0,
        "seed": 8841,
        "log_seq": 57,
        "warnings": ["ignored key 'project'"],
        "config": {"method": "grid", "parameters": {"x": {"values": [1, 2]}}},
    }


def test_sweep_json_uses_null_for_unbounded_count_missing_metric_and_no_best_run() -> None:
    sweep = make_sweep()
    sweep.ClearField("expected_run_count")
    sweep.ClearField("best_run_id")
    sweep.ClearField("best_metric")
    sweep.metric_name = ""
    sweep.metric_goal = ""
    body = sweep_json(sweep)
    assert body["expected_run_count"] is None
    assert body["metric"] is None
    assert body["best_run"] is None


def test_json_forms_turn_non_finite_metrics_into_null() -> None:
    body = run_json(make_run(1, best_metric=float("nan"), summary={"loss": float("inf")}))
    assert body["best_metric"] is None
    assert body["summary"] == {"loss": None}
    json.dumps(body, allow_nan=False)


def test_run_json_parses_the_config_and_leaves_unset_fields_null() -> None:
    run = make_run(2, state=sweeps_pb2.RUN_STATE_RUNNING, ended_at=0.0, reason="")
    run.ClearField("exit_code")
    run.ClearField("grid_index")
    body = run_json(run)
    assert body["config"] == {"lr": 0.02, "opt": {"name": "adam"}}
    assert body["state"] == "running"
    assert body["exit_code"] is None
    assert body["grid_index"] is None
    assert body["ended_at"] is None
    assert body["reason"] is None


def test_event_json_parses_the_data() -> None:
    event = sweeps_pb2.Event(seq=7, type="SweepPaused", version=1, time=1_700_000_001.5,
                             sweep_id="k3v9x0qa", data_json='{"reason": "by user"}')
    assert event_json(event) == {"seq": 7, "type": "SweepPaused", "version": 1,
                                 "time": 1_700_000_001.5, "sweep_id": "k3v9x0qa",
                                 "data": {"reason": "by user"}}


# --------------------------------------------------------------------- text


def test_format_table_aligns_columns_and_right_aligns_numbers() -> None:
    text = format_table(["ID", "N", "NAME"], [["a", "5", "x"], ["bbbb", "123", "long name"]],
                        right=(1,))
    assert text.splitlines() == [
        "ID      N  NAME",
        "a       5  x",
        "bbbb  123  long name",
    ]


def test_format_duration_picks_a_scale() -> None:
    assert format_duration(4.25) == "4.2s"
    assert format_duration(185) == "3m05s"
    assert format_duration(7620) == "2h07m"
    assert format_duration(None) == "-"


def test_format_params_dots_nested_keys_in_sorted_order() -> None:
    assert format_params({"opt": {"name": "adam", "beta": 0.9}, "lr": 0.001}) == (
        "lr=0.001 opt.beta=0.9 opt.name=adam"
    )


def test_format_params_quotes_values_with_spaces() -> None:
    assert format_params({"cmd": "; rm -rf ~"}) == 'cmd="; rm -rf ~"'


def test_render_show_lists_state_counts_and_best_run() -> None:
    text = render_show(sweep_json(make_sweep()))
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in text.splitlines())
    assert lines["state"] == "running"
    assert lines["method"] == "grid"
    assert lines["expected runs"] == "12"
    assert lines["runs"] == "8 (running 2, finished 5, failed 1)"
    assert lines["best run"] == "k3v9x0qa-0003  loss=0.125"
    assert lines["warning"] == "ignored key 'project'"
    assert lines["seed"] == "8841"


def test_render_show_gives_the_best_runs_parameters_when_known() -> None:
    sweep = sweep_json(make_sweep())
    assert "best config" not in render_show(sweep)
    sweep["best_run"]["config"] = {"lr": 0.01, "opt": {"name": "adam"}}
    assert re.search(r"^best config\s+lr=0.01 opt.name=adam$", render_show(sweep), re.M)


def test_render_show_says_unbounded_and_no_best_run() -> None:
    sweep = make_sweep(state=sweeps_pb2.SWEEP_STATE_STOPPED, state_reason="stopped by user")
    sweep.ClearField("expected_run_count")
    sweep.ClearField("best_run_id")
    text = render_show(sweep_json(sweep))
    assert "unbounded" in text
    assert "stopped (stopped by user)" in text
    assert any(line.startswith("best run") and line.endswith("-") for line in text.splitlines())


def test_render_list_has_one_aligned_row_per_sweep() -> None:
    other = make_sweep(id="zz11yy22", name="", state=sweeps_pb2.SWEEP_STATE_PAUSED)
    text = render_list([sweep_json(make_sweep()), sweep_json(other)])
    header, first, second = text.splitlines()
    assert header.split() == ["ID", "NAME", "STATE", "METHOD", "RUNS", "EXPECTED", "METRIC",
                              "BEST", "CREATED"]
    assert first.index("running") == second.index("paused") == header.index("STATE")
    assert second.startswith("zz11yy22  -")


def test_render_list_with_no_sweeps_says_so() -> None:
    assert render_list([]) == "no sweeps"


def test_render_runs_stars_the_best_run_and_names_the_metric_column() -> None:
    sweep = sweep_json(make_sweep())
    runs = [run_json(make_run(i)) for i in (1, 3, 4)]
    text = render_runs(runs, sweep, now=1_700_000_100.0)
    lines = text.splitlines()
    assert lines[0].split() == ["RUN", "STATE", "LOSS", "RECORDS", "DURATION", "PARAMETERS"]
    starred = [line for line in lines if line.startswith("*")]
    assert len(starred) == 1 and "k3v9x0qa-0003" in starred[0]
    assert "1m05s" in lines[1]
    assert "lr=0.01 opt.name=adam" in lines[1]


def test_render_runs_times_a_running_run_until_now() -> None:
    run = run_json(make_run(1, state=sweeps_pb2.RUN_STATE_RUNNING, ended_at=0.0))
    text = render_runs([run], sweep_json(make_sweep()), now=1_700_000_010.0)
    assert "10.0s" in text


def test_render_event_is_one_line_with_seq_type_and_data() -> None:
    body = event_json(sweeps_pb2.Event(seq=42, type="RunEnded", version=1, time=1_700_000_000,
                                       sweep_id="k3v9x0qa",
                                       data_json='{"run_id": "k3v9x0qa-0001", "state": '
                                                 '"finished", "exit_code": 0}'))
    line = render_event(body)
    assert "\n" not in line
    assert line.split() == ["42", "2023-11-14", "22:13:20", "RunEnded",
                            "run_id=k3v9x0qa-0001", "state=finished", "exit_code=0"]


def test_render_event_cuts_long_values() -> None:
    config = {"parameters": {f"p{i}": {"values": list(range(20))} for i in range(20)}}
    body = event_json(sweeps_pb2.Event(seq=1, type="SweepCreated", version=1, time=1.0,
                                       data_json=json.dumps({"config": config})))
    line = render_event(body)
    assert len(line) < 200
    assert line.endswith("...")


# --------------------------------------------------------------------- arguments and errors


def test_create_rejects_an_invalid_config_with_every_problem_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CONFIG)
    code = sweep_main(["create", str(path), "--controller", f"127.0.0.1:{closed_port()}"])
    out, err = capsys.readouterr()
    assert code == EXIT_INVALID
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{path}: invalid config (3 problems)"
    assert any(line.startswith("metric.goal:") for line in lines)
    assert any(line.startswith("parameters.lr.max:") for line in lines)
    assert any(line.startswith("parameters.batch.values:") for line in lines)
    assert "cannot reach" not in err


def test_create_names_a_missing_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = sweep_main(["create", str(tmp_path / "nope.yaml")])
    assert code == EXIT_INVALID
    assert "nope.yaml" in capsys.readouterr().err


def test_a_malformed_controller_address_is_invalid_input(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert sweep_main(["list", "--controller", "localhost"]) == EXIT_INVALID
    assert "'localhost' is not HOST:PORT" in capsys.readouterr().err


def test_an_unreadable_token_file_is_invalid_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = sweep_main(["list", "--token-file", str(tmp_path / "missing")])
    assert code == EXIT_INVALID
    assert "cannot read token file" in capsys.readouterr().err


def test_controller_comes_from_the_environment_when_no_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv("OPENSWEEP_CONTROLLER", address)
    assert sweep_main(["list"]) == EXIT_UNREACHABLE
    assert address in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["show"],
    ["pause"],
    ["list", "--timeout", "0"],
    ["create", "x.yaml", "--seed", "-1"],
    ["events", "abc", "--after", "x"],
    ["events", "abc", "--after", "-1"],
])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        sweep_main(argv)
    assert info.value.code == 2
    assert "usage: sweep" in capsys.readouterr().err


def test_a_wandb_style_sweep_path_means_its_last_part(
    capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{closed_port()}"
    assert sweep_main(["show", "me/project/k3v9x0qa", "--controller", address]) == (
        EXIT_UNREACHABLE
    )
    assert "cannot reach the controller at " + address in capsys.readouterr().err


def test_opensweep_sweep_validates_locally_with_every_problem() -> None:
    bad = {"method": "grid", "metric": {"name": "loss", "goal": "minimise"},
           "parameters": {"lr": {"min": 0.1, "max": 0.01}}}
    with pytest.raises(ConfigError) as info:
        opensweep.sweep(bad, controller=f"127.0.0.1:{closed_port()}")
    paths = {p.path for p in info.value.problems}
    assert {"metric.goal", "parameters.lr.max"} <= paths


def test_events_without_an_id_reads_the_whole_log(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{closed_port()}"
    assert sweep_main(["events", "--controller", address]) == EXIT_UNREACHABLE
    assert "cannot reach" in capsys.readouterr().err


class _Failed(grpc.RpcError):
    """A failed call as grpc reports it: a status code and the server's details."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_an_unreachable_controller_is_explained_in_a_few_words() -> None:
    exc = _Failed(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: "
                  "UNKNOWN: ipv4:127.0.0.1:9: Failed to connect to remote host: Connection refused")
    assert describe_rpc_error(exc, "127.0.0.1:9") == (
        "cannot reach the controller at 127.0.0.1:9 (connection refused); is `controller serve` "
        "running there? Set --controller or OPENSWEEP_CONTROLLER.")


def test_a_missing_token_and_a_refused_token_read_differently() -> None:
    exc = _Failed(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")
    assert "requires a token and none was given" in describe_rpc_error(exc, token_sent=False)
    refused = describe_rpc_error(exc, token_sent=True)
    assert "refused the token" in refused and "missing or wrong" not in refused
    error = ControllerError.from_rpc(exc, "h:1", token_sent=True)
    assert error.code == "UNAUTHENTICATED" and str(error) == describe_rpc_error(exc, "h:1")
