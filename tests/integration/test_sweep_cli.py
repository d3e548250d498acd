"""The `sweep` client and opensweep.sweep() against a real controller process on loopback.

Runs come from a simulated agent speaking the real agent protocol over gRPC (register, hold the
Connect stream, ask for work, report metrics and outcomes), so these tests need no training
program and stay fast. Most tests share one controller per module (each creates its own sweep);
the token tests start their own.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opensweep
from controller.cli import sweep_main
from controller.client import ControllerError, agent_stub, sync_channel
from controller.core.errors import ConfigError
from controller.sweep_cli import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE
from opensweep.v1 import agents_pb2, sweeps_pb2
from tests.integration.conftest import ControllerProcess, StartController

ID = re.compile(r"^[a-z0-9]{8}$")
GRID = """\
name: cli-grid
method: grid
metric: {name: loss, goal: minimize}
parameters:
  lr: {values: [0.1, 0.01, 0.001]}
  opt: {parameters: {name: {value: adam}}}
"""
RANDOM = """\
method: random
parameters:
  x: {min: 0.0, max: 1.0}
"""


# --------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    """One controller for the tests that need nothing special from it."""
    workdir = tmp_path_factory.mktemp("controller")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSWEEP_")}
    env["PYTHONUNBUFFERED"] = "1"
    ctl = ControllerProcess(workdir, workdir / "opensweep.db", [], env)
    ctl.start()
    yield ctl
    ctl.terminate(timeout=15)


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENSWEEP_CONTROLLER", "OPENSWEEP_TOKEN", "OPENSWEEP_TLS_CA"):
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `sweep ...` in this process (real gRPC to the real controller)."""
    capsys.readouterr()
    code = sweep_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_process(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `sweep ...` as its own process, as a user would."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from controller.cli import sweep_main; "
         "sys.exit(sweep_main())", *argv],
        capture_output=True, text=True, timeout=60, env=env,
    )


def create(capsys: pytest.CaptureFixture[str], ctl: ControllerProcess, tmp_path: Path,
           text: str = GRID) -> str:
    path = tmp_path / f"sweep-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    code, out, err = cli(capsys, "create", str(path), "--controller", ctl.address)
    assert code == EXIT_OK, err
    return out.strip()


def show_json(capsys: pytest.CaptureFixture[str], ctl: ControllerProcess,
              sweep_id: str) -> dict[str, Any]:
    code, out, err = cli(capsys, "show", sweep_id, "--json", "--controller", ctl.address)
    assert code == EXIT_OK, err
    body: dict[str, Any] = json.loads(out)
    return body


class SimAgent:
    """A minimal agent over the real protocol: enough to make runs exist and end."""

    def __init__(self, address: str, sweep_id: str) -> None:
        self.channel = sync_channel(address)
        stub = agent_stub(self.channel)
        reply = stub.RegisterAgent(
            agents_pb2.RegisterAgentRequest(sweep_id=sweep_id, hostname="test", pid=os.getpid()),
            timeout=10,
        )
        self.agent_id = reply.agent_id
        self.outbox: queue.Queue[agents_pb2.AgentMessage | None] = queue.Queue()
        self.stream = stub.Connect(iter(self.outbox.get, None), timeout=60)
        self.send(hello=agents_pb2.Hello(agent_id=self.agent_id))
        self.receive("welcome")

    def send(self, **kind: Any) -> None:
        self.outbox.put(agents_pb2.AgentMessage(**kind))

    def receive(self, *kinds: str) -> agents_pb2.ControllerMessage:
        for message in self.stream:
            if message.WhichOneof("kind") in kinds:
                return message
        raise AssertionError(f"stream ended before any of {kinds}")

    def request_run(self) -> agents_pb2.RunAssignment | None:
        self.send(request_run=agents_pb2.RequestRun())
        message = self.receive("run", "no_run")
        return message.run if message.WhichOneof("kind") == "run" else None

    def start(self) -> agents_pb2.RunAssignment:
        run = self.request_run()
        assert run is not None, "the controller had no run to hand out"
        self.send(run_started=agents_pb2.RunStarted(run_id=run.run_id, pid=os.getpid()))
        return run

    def finish(self, run_id: str, losses: list[float]) -> None:
        records = [
            sweeps_pb2.MetricRecord(seq=i, step=i, values={"loss": v}, time=time.time())
            for i, v in enumerate(losses)
        ]
        self.send(metrics=agents_pb2.MetricsBatch(run_id=run_id, records=records))
        self.send(run_ended=agents_pb2.RunEnded(
            run_id=run_id, state=sweeps_pb2.RUN_STATE_FINISHED, exit_code=0,
            reason="exit status 0"))
        while True:
            ack = self.receive("ack").ack
            if ack.run_id == run_id and ack.run_ended:
                return

    def close(self) -> None:
        self.send(goodbye=agents_pb2.Goodbye(reason="test done"))
        self.outbox.put(None)
        self.stream.cancel()
        self.channel.close()


def run_two(ctl: ControllerProcess, sweep_id: str) -> tuple[str, str]:
    """Two finished runs: the first ends at loss 0.5, the second at 0.25 (the best)."""
    agent = SimAgent(ctl.address, sweep_id)
    try:
        first = agent.start()
        agent.finish(first.run_id, [0.9, 0.5])
        second = agent.start()
        agent.finish(second.run_id, [0.8, 0.25, 0.3])
    finally:
        agent.close()
    return first.run_id, second.run_id


# --------------------------------------------------------------------- create


def test_create_prints_the_id_alone_and_how_to_start_an_agent(
    shared: ControllerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    done = cli_process("create", str(path), "--controller", shared.address)
    assert done.returncode == EXIT_OK, done.stderr
    assert ID.match(done.stdout.rstrip("\n")) and done.stdout.count("\n") == 1
    sweep_id = done.stdout.strip()
    assert f"agent --sweep {sweep_id} --controller {shared.address}" in done.stderr


def test_create_rejects_an_invalid_config_with_every_problem_and_creates_nothing(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("method: grid\nmetric: {name: loss, goal: up}\n"
                    "parameters:\n  lr: {min: 0.1, max: 0.01}\n")
    code, before, _ = cli(capsys, "list", "--json", "--controller", shared.address)
    code, out, err = cli(capsys, "create", str(path), "--controller", shared.address)
    assert code == EXIT_INVALID
    assert out == ""
    assert "metric.goal:" in err and "parameters.lr.max:" in err
    _, after, _ = cli(capsys, "list", "--json", "--controller", shared.address)
    assert json.loads(after) == json.loads(before)


def test_the_controllers_invalid_argument_message_is_printed(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Valid locally, but over the controller's per-sweep config size limit.
    path = tmp_path / "huge.yaml"
    path.write_text(RANDOM + "description: " + "x" * 300_000 + "\n")
    code, out, err = cli(capsys, "create", str(path), "--controller", shared.address)
    assert code == EXIT_INVALID
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"sweep: error: the controller at {shared.address} rejected the request:"
    assert "limit" in lines[1]
    with pytest.raises(ConfigError) as info:
        opensweep.sweep(path, controller=shared.address)
    assert "limit" in str(info.value)


# --------------------------------------------------------------------- reading


def test_show_reports_state_counts_and_the_best_run(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_id = create(capsys, shared, tmp_path)
    _, best = run_two(shared, sweep_id)
    body = show_json(capsys, shared, sweep_id)
    assert body["id"] == sweep_id
    assert body["state"] == "running"
    assert body["method"] == "grid"
    assert body["name"] == "cli-grid"
    assert body["expected_run_count"] == 3
    assert body["metric"] == {"name": "loss", "goal": "minimize"}
    assert body["run_counts"]["finished"] == 2
    assert body["run_count"] == 2
    assert body["best_run"]["id"] == best and body["best_run"]["metric"] == 0.25
    assert body["best_run"]["config"]["opt"] == {"name": "adam"}
    code, out, _ = cli(capsys, "show", sweep_id, "--controller", shared.address)
    assert code == EXIT_OK
    assert re.search(rf"^best run\s+{best}\s+loss=0\.25$", out, re.M)
    assert re.search(r"^expected runs\s+3$", out, re.M)


def test_runs_lists_every_run_with_its_parameters_and_metric(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_id = create(capsys, shared, tmp_path)
    first, best = run_two(shared, sweep_id)
    code, out, err = cli(capsys, "runs", sweep_id, "--json", "--controller", shared.address)
    assert code == EXIT_OK, err
    body = json.loads(out)
    assert body["sweep_id"] == sweep_id
    runs = {r["id"]: r for r in body["runs"]}
    assert set(runs) == {first, best}
    assert runs[best]["state"] == "finished"
    assert runs[best]["best_metric"] == 0.25
    assert runs[best]["summary"]["loss"] == 0.3
    assert runs[best]["metric_count"] == 3
    assert runs[first]["config"]["opt"] == {"name": "adam"}
    assert runs[first]["config"]["lr"] in (0.1, 0.01, 0.001)
    code, out, _ = cli(capsys, "runs", sweep_id, "--controller", shared.address)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["RUN", "STATE", "LOSS"]
    assert [line.split()[1] for line in lines[1:] if line.startswith("*")] == [best]


def test_list_shows_every_sweep(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = {create(capsys, shared, tmp_path), create(capsys, shared, tmp_path, RANDOM)}
    code, out, _ = cli(capsys, "list", "--json", "--controller", shared.address)
    assert code == EXIT_OK
    listed = {s["id"]: s for s in json.loads(out)["sweeps"]}
    assert ids <= set(listed)
    assert {listed[i]["method"] for i in ids} == {"grid", "random"}
    _, text, _ = cli(capsys, "list", "--controller", shared.address)
    rows = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert ids <= set(rows)


# --------------------------------------------------------------------- state changes


def test_pause_resume_and_stop_change_the_state_and_are_audited(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_id = create(capsys, shared, tmp_path)
    for command, state in (("pause", "paused"), ("resume", "running"), ("stop", "stopped")):
        code, out, err = cli(capsys, command, sweep_id, "--controller", shared.address)
        assert code == EXIT_OK, err
        assert out.strip() == f"sweep {sweep_id} is {state}"
        assert show_json(capsys, shared, sweep_id)["state"] == state
    code, out, _ = cli(capsys, "events", sweep_id, "--json", "--controller", shared.address)
    assert code == EXIT_OK
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == [
        "SweepCreated", "SweepPaused", "SweepResumed", "SweepStopped"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert all(e["sweep_id"] == sweep_id for e in events)


def test_cancel_orders_running_runs_stopped(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_id = create(capsys, shared, tmp_path)
    agent = SimAgent(shared.address, sweep_id)
    try:
        run = agent.start()
        code, out, err = cli(capsys, "cancel", sweep_id, "--controller", shared.address)
        assert code == EXIT_OK, err
        assert out.strip() == f"sweep {sweep_id} is cancelled"
        stop = agent.receive("stop_run").stop_run
        assert stop.run_id == run.run_id
    finally:
        agent.close()
    _, out, _ = cli(capsys, "events", sweep_id, "--controller", shared.address)
    assert re.search(rf"RunStopRequested\s+run_id={run.run_id}", out)


def test_a_state_change_the_sweep_cannot_make_prints_the_controllers_reason(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_id = create(capsys, shared, tmp_path)
    assert cli(capsys, "cancel", sweep_id, "--controller", shared.address)[0] == EXIT_OK
    code, out, err = cli(capsys, "resume", sweep_id, "--controller", shared.address)
    assert code == EXIT_FAILED
    assert out == ""
    assert err.startswith("sweep: error: ") and len(err.splitlines()) == 1


# --------------------------------------------------------------------- events


def test_events_lists_the_audit_log_one_event_per_line(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_id = create(capsys, shared, tmp_path)
    run_two(shared, sweep_id)
    code, out, _ = cli(capsys, "events", sweep_id, "--controller", shared.address)
    assert code == EXIT_OK
    lines = out.splitlines()
    types = [line.split()[3] for line in lines]
    assert types[0] == "SweepCreated"
    assert {"AgentRegistered", "RunAssigned", "MetricsLogged", "RunEnded"} <= set(types)
    seqs = [int(line.split()[0]) for line in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_events_follow_prints_new_events_as_they_happen(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_id = create(capsys, shared, tmp_path)
    # Ctrl-C as in a terminal: a child of a non-interactive shell may inherit SIGINT ignored.
    follower = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys; "
         "signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from controller.cli import sweep_main; sys.exit(sweep_main())",
         "events", sweep_id, "--follow", "--json",
         "--controller", shared.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["type"] == "SweepCreated"
        assert cli(capsys, "pause", sweep_id, "--controller", shared.address)[0] == EXIT_OK
        assert json.loads(follower.stdout.readline())["type"] == "SweepPaused"
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == EXIT_OK
    assert "Traceback" not in err


def test_events_follow_says_so_when_the_controller_goes_away(
    start_controller: StartController, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctl = start_controller()
    sweep_id = create(capsys, ctl, tmp_path)
    follower = subprocess.Popen(
        [sys.executable, "-c", "import sys; from controller.cli import sweep_main; "
         "sys.exit(sweep_main())", "events", sweep_id, "--follow", "--controller", ctl.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert follower.stdout is not None
        assert "SweepCreated" in follower.stdout.readline()
        ctl.terminate()
        _, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == EXIT_UNREACHABLE
    assert ctl.address in err and "Traceback" not in err


# --------------------------------------------------------------------- failures


@pytest.mark.parametrize("command", ["show", "runs", "pause", "resume", "stop", "cancel",
                                     "events"])
def test_an_unknown_sweep_id_is_named_in_the_error(
    shared: ControllerProcess, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, command, "zzzzzzzz", "--controller", shared.address)
    assert code == EXIT_FAILED
    assert out == ""
    assert err == (f"sweep: error: no sweep 'zzzzzzzz' on the controller at {shared.address} "
                   "(`sweep list` shows its sweeps)\n")


def test_an_unreachable_controller_names_the_address_without_a_traceback() -> None:
    address = f"127.0.0.1:{closed_port()}"
    done = cli_process("list", "--controller", address)
    assert done.returncode == EXIT_UNREACHABLE
    assert address in done.stderr and "controller serve" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_wrong_token_is_refused_without_printing_it(
    start_controller: StartController, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctl = start_controller(token="right-secret")
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-secret-value\n")
    right = tmp_path / "right"
    right.write_text("right-secret\n")
    code, out, err = cli(capsys, "list", "--token-file", str(wrong), "--controller", ctl.address)
    assert code == EXIT_FAILED
    assert "refused the token" in err
    assert "wrong-secret-value" not in out + err and "right-secret" not in out + err
    code, out, err = cli(capsys, "list", "--controller", ctl.address)
    assert code == EXIT_FAILED
    assert "requires a token" in err
    assert cli(capsys, "list", "--token-file", str(right), "--controller", ctl.address)[0] == 0
    monkeypatch.setenv("OPENSWEEP_TOKEN", "right-secret")
    monkeypatch.setenv("OPENSWEEP_CONTROLLER", ctl.address)
    sweep_id = opensweep.sweep({"method": "random", "parameters": {"x": {"values": [1, 2]}}})
    assert show_json(capsys, ctl, sweep_id)["state"] == "running"
    with pytest.raises(ControllerError) as info:
        opensweep.sweep(RANDOM, token="wrong-secret-value")
    assert info.value.code == "UNAUTHENTICATED"
    assert "wrong-secret-value" not in str(info.value)


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself (so it is its own CA), and its key."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make certificates")
def test_tls_needs_the_controllers_ca_and_says_so(
    start_controller: StartController, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = self_signed(tmp_path, "controller")
    other, _ = self_signed(tmp_path, "other")
    ctl = start_controller(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    code, out, err = cli(capsys, "list", "--tls-ca", str(cert), "--controller", ctl.address)
    assert (code, out) == (EXIT_OK, "no sweeps\n"), err
    code, _, err = cli(capsys, "list", "--tls-ca", str(other), "--controller", ctl.address)
    assert code == EXIT_UNREACHABLE
    assert "TLS handshake failed" in err and "--tls-ca" in err
    code, _, err = cli(capsys, "list", "--controller", ctl.address)
    assert code == EXIT_UNREACHABLE
    assert "--tls-ca" in err


# --------------------------------------------------------------------- opensweep.sweep()


def test_opensweep_sweep_creates_from_a_dict_a_path_or_yaml_text(
    shared: ControllerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    ids = [
        opensweep.sweep({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}},
                        controller=shared.address),
        opensweep.sweep(path, controller=shared.address),
        opensweep.sweep(str(path), controller=shared.address),
        opensweep.sweep(RANDOM, controller=shared.address, seed=7, project="p", entity="e"),
    ]
    assert all(ID.match(i) for i in ids) and len(set(ids)) == 4
    assert show_json(capsys, shared, ids[1])["expected_run_count"] == 3
    assert show_json(capsys, shared, ids[0])["expected_run_count"] is None
    assert show_json(capsys, shared, ids[3])["seed"] == 7


def test_opensweep_sweep_raises_config_error_and_controller_error(
    shared: ControllerProcess,
) -> None:
    with pytest.raises(ConfigError) as bad:
        opensweep.sweep({"method": "grid", "parameters": {"lr": {"min": 0.1, "max": 0.01}}},
                        controller=shared.address)
    assert any(p.path == "parameters.lr.max" for p in bad.value.problems)
    with pytest.raises(ControllerError) as down:
        opensweep.sweep(RANDOM, controller=f"127.0.0.1:{closed_port()}")
    assert down.value.code == "UNAVAILABLE"
    assert "controller serve" in str(down.value)

