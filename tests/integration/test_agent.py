"""The agent end to end: a real `controller serve` and real `agent` processes on loopback."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import opensweep
from agent.runner import group_alive
from controller.client import sweep_stub, sync_channel
from opensweep.v1 import sweeps_pb2
from tests.integration.conftest import ControllerProcess, StartController, wait_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
AGENT_TIMEOUT = 60.0


def _load_train() -> Any:
    spec = importlib.util.spec_from_file_location("example_train", EXAMPLES / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Agent:
    """One `agent` process; stdout and stderr go to files (read them with .out / .err)."""

    def __init__(self, workdir: Path, name: str, argv: list[str], env: dict[str, str],
                 cwd: Path) -> None:
        self.stdout_path = workdir / f"{name}.out"
        self.stderr_path = workdir / f"{name}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "agent.cli", *argv],
                                         stdout=out, stderr=err, env=env, cwd=cwd)

    @property
    def out(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait(self, timeout: float = AGENT_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"agent did not exit in {timeout}s\nstdout:\n{self.out}\n"
                                 f"stderr:\n{self.err}") from None


class Harness:
    """A controller plus helpers to create sweeps, start agents and read runs back."""

    def __init__(self, ctl: ControllerProcess, workdir: Path, token: str | None = None) -> None:
        self.ctl = ctl
        self.workdir = workdir
        self.token = token
        self.agents: list[Agent] = []
        self._channel: Any = None
        # A user's shell: no opensweep settings, and none of what importing opensweep set here.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("OPENSWEEP_") and k != "GRPC_ENABLE_FORK_SUPPORT"}
        self.env["HOME"] = str(workdir / "home")
        (workdir / "home").mkdir(exist_ok=True)

    def sweep(self, config: dict[str, Any] | Path) -> str:
        return opensweep.sweep(config, controller=self.ctl.address, token=self.token)

    def agent(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              runs_dir: Path | None = None) -> Agent:
        name = f"agent{len(self.agents)}"
        argv = [*args, "--controller", self.ctl.address,
                "--dir", str(runs_dir or self.workdir / "runs")]
        agent = Agent(self.workdir, name, argv, {**self.env, **(env or {})},
                      cwd or self.workdir)
        self.agents.append(agent)
        return agent

    def stub(self) -> Any:
        if self._channel is None:
            self._channel = sync_channel(self.ctl.address, token=self.token)
        return sweep_stub(self._channel)

    def runs(self, sweep_id: str) -> list[sweeps_pb2.Run]:
        reply = self.stub().ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id), timeout=10)
        return sorted(reply.runs, key=lambda r: r.id)

    def get_sweep(self, sweep_id: str) -> sweeps_pb2.Sweep:
        return self.stub().GetSweep(sweeps_pb2.GetSweepRequest(sweep_id=sweep_id), timeout=10)

    def metrics(self, run_id: str) -> list[sweeps_pb2.MetricRecord]:
        reply = self.stub().GetRunMetrics(sweeps_pb2.GetRunMetricsRequest(run_id=run_id),
                                          timeout=10)
        return list(reply.records)

    def run_where(self, sweep_id: str, predicate: Any, what: str) -> sweeps_pb2.Run:
        def find() -> sweeps_pb2.Run | None:
            return next((r for r in self.runs(sweep_id) if predicate(r)), None)
        return wait_for(find, timeout=30, interval=0.05, what=what)

    def cleanup(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        for agent in self.agents:
            if agent.proc.poll() is None:
                agent.proc.kill()
                agent.proc.wait()


@pytest.fixture(scope="module")
def shared_controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    """One controller for the tests that need nothing special of it (each makes its own sweep);
    starting a controller per test would cost more than the tests themselves."""
    workdir = tmp_path_factory.mktemp("shared-controller")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSWEEP_")}
    ctl = ControllerProcess(workdir, workdir / "opensweep.db", [], env)
    ctl.start()
    yield ctl
    ctl.terminate(timeout=15)


@pytest.fixture
def harness(shared_controller: ControllerProcess, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(shared_controller, tmp_path)
    yield h
    h.cleanup()


@pytest.fixture
def own_harness(start_controller: StartController, tmp_path: Path) -> Iterator[Harness]:
    """A controller of the test's own, for tests that kill it."""
    h = Harness(start_controller(), tmp_path)
    yield h
    h.cleanup()


def _program(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def _state(run: sweeps_pb2.Run) -> str:
    return sweeps_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_").lower()


# ---- draining a grid ----------------------------------------------------------------------

@pytest.mark.parametrize(("config_name", "source"), [
    ("demo.yaml", "the command line"),
    ("demo-json.yaml", "config.json"),
])
def test_two_agents_drain_a_grid_with_every_metric_and_the_right_best_run(
        harness: Harness, config_name: str, source: str) -> None:
    config = yaml.safe_load((EXAMPLES / config_name).read_text())
    sweep_id = harness.sweep(config)
    agents = [harness.agent(sweep_id, cwd=EXAMPLES) for _ in range(2)]
    for agent in agents:
        assert agent.wait() == 0, agent.err
    train = _load_train()
    runs = harness.runs(sweep_id)
    assert len(runs) == 12
    points = {json.dumps(json.loads(r.config_json), sort_keys=True) for r in runs}
    assert len(points) == 12
    for run in runs:
        assert _state(run) == "finished", (run.id, run.reason)
        params = json.loads(run.config_json)
        curve = train.loss_curve(params)
        records = harness.metrics(run.id)
        assert [r.seq for r in records] == list(range(len(curve)))
        assert [r.values["loss"] for r in records] == pytest.approx(curve)
        assert run.summary["loss"] == pytest.approx(curve[-1])
        # The program really got its values through the sweep's command macro.
        stdout = (harness.workdir / "runs" / run.id / "stdout.log").read_text()
        line = next(x for x in stdout.splitlines() if f"hyperparameters from {source}" in x)
        assert json.loads(line.split(": ", 2)[2]) == params
    best = min(runs, key=lambda r: train.loss_curve(json.loads(r.config_json))[-1])
    sweep = harness.get_sweep(sweep_id)
    assert sweep.best_run_id == best.id
    assert sweep.best_metric == pytest.approx(best.summary["loss"])
    # Each agent printed one line per run it executed, 12 in all.
    lines = [x for a in agents for x in a.out.splitlines() if x.startswith("run ")]
    assert sorted(x.split()[1] for x in lines) == [r.id for r in runs]
    assert all("finished" in x and "loss=" in x for x in lines)


def test_count_limits_the_runs_of_one_agent_and_verbose_echoes_output(
        harness: Harness, tmp_path: Path) -> None:
    program = _program(tmp_path, "hello.py", """
        import os
        print("hello from", os.environ["OPENSWEEP_RUN_ID"])
    """)
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "parameters": {"x": {"values": [1, 2, 3, 4, 5]}}})
    agent = harness.agent("--sweep", sweep_id, "--count", "2", "--verbose")
    assert agent.wait() == 0, agent.err
    runs = harness.runs(sweep_id)
    assert [_state(r) for r in runs] == ["finished", "finished"]
    for run in runs:
        assert f"[{run.id}] hello from {run.id}" in agent.err
    assert "done after 2 run(s)" in agent.err
    assert "lost the controller" not in agent.err


def test_quiet_prints_no_run_lines_only_logs(harness: Harness, tmp_path: Path) -> None:
    program = _program(tmp_path, "noop.py", "pass\n")
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "parameters": {"x": {"values": [1]}}})
    agent = harness.agent(sweep_id, "--quiet")
    assert agent.wait() == 0, agent.err
    [run] = harness.runs(sweep_id)
    assert agent.out == ""
    assert f"run {run.id}: finished (exit status 0)" in agent.err


def test_a_hostile_value_reaches_the_program_as_one_literal_argument(harness: Harness,
                                                                     tmp_path: Path) -> None:
    canary = harness.workdir / "home" / "canary"
    canary.write_text("still here")
    program = _program(tmp_path, "argv.py", """
        import json, os, sys
        out = os.path.join(os.environ["OPENSWEEP_RUN_DIR"], "argv.json")
        with open(out, "w") as f:
            json.dump({"argv": sys.argv[1:], "config": json.loads(os.environ["OPENSWEEP_CONFIG"]),
                       "run_id": os.environ["OPENSWEEP_RUN_ID"],
                       "grpc_fork": os.environ.get("GRPC_ENABLE_FORK_SUPPORT"),
                       "sweep_id": os.environ["OPENSWEEP_SWEEP_ID"]}, f)
    """)
    hostile = ['"; rm -rf ~', "$(touch pwned) `touch pwned2` | true && echo x > y"]
    sweep_id = harness.sweep({
        "method": "grid", "program": program,
        "command": ["${env}", "${interpreter}", "${program}", "${args}"],
        "parameters": {"evil": {"values": hostile}},
    })
    agent = harness.agent(sweep_id)
    assert agent.wait() == 0, agent.err
    runs = harness.runs(sweep_id)
    assert [_state(r) for r in runs] == ["finished", "finished"]
    seen = []
    for run in runs:
        report = json.loads((harness.workdir / "runs" / run.id / "argv.json").read_text())
        assert len(report["argv"]) == 1
        assert report["argv"][0] == f"--evil={report['config']['evil']}"
        assert (report["run_id"], report["sweep_id"]) == (run.id, sweep_id)
        assert report["grpc_fork"] is None  # the agent's own setting stays out of runs
        seen.append(report["config"]["evil"])
    assert sorted(seen) == sorted(hostile)
    assert canary.read_text() == "still here"
    assert not list(harness.workdir.rglob("pwned*")) and not (harness.workdir / "y").exists()


@pytest.mark.parametrize("inside_a_running_loop", [False, True], ids=["script", "notebook"])
def test_function_mode_runs_each_call_in_a_fresh_process(harness: Harness, tmp_path: Path,
                                                         inside_a_running_loop: bool) -> None:
    sweep_id = harness.sweep({"method": "grid", "metric": {"name": "y", "goal": "minimize"},
                              "parameters": {"x": {"values": [3, 1, 2]}}})
    script = _program(tmp_path, "fn.py", f"""
        import asyncio, os, opensweep

        def train():
            with opensweep.init(config={{"x": 100, "scale": 2}}) as run:
                for i in range(3):
                    run.log({{"y": run.config.x * run.config.scale + i, "pid": os.getpid()}})

        def go():
            return opensweep.agent({sweep_id!r}, function=train, count=3,
                                   controller={harness.ctl.address!r}, dir="fn-runs")

        async def notebook_cell():
            # Like Jupyter: an event loop is already running in this thread.
            return go()

        n = asyncio.run(notebook_cell()) if {inside_a_running_loop!r} else go()
        print("ran", n, "parent", os.getpid())
    """)
    proc = subprocess.run([sys.executable, script], cwd=tmp_path, env=harness.env,
                          capture_output=True, text=True, timeout=AGENT_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    ran_line = next(x for x in proc.stdout.splitlines() if x.startswith("ran "))
    _, count, _, parent = ran_line.split()
    assert count == "3"
    runs = harness.runs(sweep_id)
    pids = set()
    for run in runs:
        assert _state(run) == "finished", run.reason
        x = json.loads(run.config_json)["x"]
        records = harness.metrics(run.id)
        assert [r.values["y"] for r in records] == [2 * x, 2 * x + 1, 2 * x + 2]
        pids.add(records[0].values["pid"])
    assert len(pids) == 3 and float(parent) not in pids
    assert harness.get_sweep(sweep_id).best_metric == 2.0


def test_an_agent_waits_out_a_paused_sweep_and_works_after_resume(harness: Harness,
                                                                  tmp_path: Path) -> None:
    program = _program(tmp_path, "noop.py", "pass\n")
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "parameters": {"x": {"values": [1, 2]}}})
    stub = harness.stub()
    stub.PauseSweep(sweeps_pb2.SweepCommandRequest(sweep_id=sweep_id), timeout=10)
    agent = harness.agent(sweep_id)
    wait_for(lambda: "waiting:" in agent.err and "paused" in agent.err, timeout=30,
             what="the agent to say it waits for the paused sweep")
    assert harness.runs(sweep_id) == []
    stub.ResumeSweep(sweeps_pb2.SweepCommandRequest(sweep_id=sweep_id), timeout=10)
    assert agent.wait() == 0, agent.err
    assert [_state(r) for r in harness.runs(sweep_id)] == ["finished", "finished"]
    assert agent.err.count("paused") == 1


# ---- stopping -----------------------------------------------------------------------------

_STUBBORN = """
    import json, os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
    with open(os.environ["OPENSWEEP_METRICS"], "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "child": child.pid}) + "\\n")
    time.sleep(120)
"""

_SLEEPER = """
    import json, os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.environ["OPENSWEEP_METRICS"], "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "child": child.pid}) + "\\n")
    time.sleep(120)
"""


def _running_pid(harness: Harness, sweep_id: str) -> tuple[sweeps_pb2.Run, int]:
    run = harness.run_where(sweep_id, lambda r: r.metric_count > 0, "the program's first metric")
    return run, int(harness.metrics(run.id)[0].values["pid"])


def test_cancel_kills_the_whole_process_group_even_when_it_ignores_sigterm(
        harness: Harness, tmp_path: Path) -> None:
    program = _program(tmp_path, "stubborn.py", _STUBBORN)
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "parameters": {"x": {"values": [1, 2]}}})
    agent = harness.agent(sweep_id, "--grace-period", "1")
    run, pid = _running_pid(harness, sweep_id)
    assert group_alive(pid)
    harness.stub().CancelSweep(sweeps_pb2.SweepCommandRequest(sweep_id=sweep_id), timeout=10)
    assert agent.wait() == 0, agent.err
    [run] = harness.runs(sweep_id)
    assert _state(run) == "stopped"
    assert run.exit_code == -signal.SIGKILL
    assert not group_alive(pid)
    assert "1 stopped" in agent.err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "hangup"])
def test_ctrl_c_stops_the_run_tells_the_controller_and_exits_130(harness: Harness,
                                                                 tmp_path: Path,
                                                                 sig: signal.Signals) -> None:
    program = _program(tmp_path, "sleeper.py", _SLEEPER)
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "parameters": {"x": {"values": [1, 2]}}})
    agent = harness.agent(sweep_id)
    run, pid = _running_pid(harness, sweep_id)
    agent.proc.send_signal(sig)
    assert agent.wait() == 130, agent.err
    assert not group_alive(pid)
    [run] = harness.runs(sweep_id)
    assert _state(run) == "stopped"
    assert "interrupted" in run.reason and sig.name in run.reason
    assert f"run {run.id}" in agent.out and "stopped" in agent.out


def test_runs_of_an_agent_killed_outright_are_taken_down_by_its_watchdog(
        harness: Harness, tmp_path: Path) -> None:
    program = _program(tmp_path, "stubborn.py", _STUBBORN)
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "parameters": {"x": {"values": [1]}}})
    agent = harness.agent(sweep_id, "--grace-period", "0.5")
    _, pid = _running_pid(harness, sweep_id)
    agent.proc.kill()  # SIGKILL: the agent itself can do nothing about its run
    agent.proc.wait()
    wait_for(lambda: not group_alive(pid), timeout=30,
             what="the watchdog to stop the orphaned run's process group")


def test_controller_sigkill_and_restart_loses_and_doubles_no_metric(
        own_harness: Harness, tmp_path: Path) -> None:
    harness = own_harness
    program = _program(tmp_path, "steady.py", """
        import json, os, time
        with open(os.environ["OPENSWEEP_METRICS"], "a", buffering=1) as f:
            for i in range(120):
                f.write(json.dumps({"_step": 1000 + i, "i": i}) + "\\n")
                time.sleep(0.01)
                if i == 20:
                    # Hold here until the test has killed the controller.
                    while not os.path.exists(os.environ["GATE"]):
                        time.sleep(0.01)
    """)
    gate = tmp_path / "gate"
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "parameters": {"x": {"values": [1, 2]}}})
    agent = harness.agent(sweep_id, env={"GATE": str(gate)})
    first = harness.run_where(sweep_id, lambda r: r.metric_count >= 21, "21 metrics")
    harness.ctl.kill()
    gate.write_text("go")
    # The program keeps writing while the controller is down; the agent keeps its records.
    metrics_file = harness.workdir / "runs" / first.id / "metrics.jsonl"
    wait_for(lambda: len(metrics_file.read_text().splitlines()) >= 60, timeout=30,
             what="the program to write while the controller is down")
    harness.ctl.restart()
    assert agent.wait() == 0, agent.err
    runs = harness.runs(sweep_id)
    assert [_state(r) for r in runs] == ["finished", "finished"], [r.reason for r in runs]
    for run in runs:
        records = harness.metrics(run.id)
        assert [r.seq for r in records] == list(range(120)), run.id
        assert [r.step for r in records] == [1000 + i for i in range(120)]
        assert [r.values["i"] for r in records] == [float(i) for i in range(120)]
        assert run.metric_count == 120


# ---- giving up ----------------------------------------------------------------------------

def test_consecutive_failures_stop_the_agent_and_show_the_stderr_tail(harness: Harness,
                                                                      tmp_path: Path) -> None:
    program = _program(tmp_path, "broken.py", """
        import sys
        print("Traceback (most recent call last):", file=sys.stderr)
        print("ModuleNotFoundError: No module named 'torchh'", file=sys.stderr)
        sys.exit(1)
    """)
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "parameters": {"x": {"values": list(range(12))}}})
    agent = harness.agent(sweep_id, "--max-consecutive-failures", "3")
    assert agent.wait() == 3
    assert "3 runs in a row failed" in agent.err
    assert "No module named 'torchh'" in agent.err
    runs = harness.runs(sweep_id)
    assert [_state(r) for r in runs] == ["failed"] * 3
    assert all(r.exit_code == 1 and r.reason == "exit status 1" for r in runs)


def test_an_agent_started_away_from_a_relative_program_says_where_it_looked(
        harness: Harness, tmp_path: Path) -> None:
    sweep_id = harness.sweep({"method": "grid", "program": "train.py",
                              "parameters": {"x": {"values": [1, 2, 3]}}})
    agent = harness.agent(sweep_id, "--max-consecutive-failures", "2", cwd=tmp_path)
    assert agent.wait() == 3
    assert f"program 'train.py' not found in {tmp_path}" in agent.err
    runs = harness.runs(sweep_id)
    assert [_state(r) for r in runs] == ["failed", "failed"]
    assert all("not found in" in r.reason for r in runs)


def test_wrong_or_missing_token_is_refused_clearly(start_controller: StartController,
                                                   tmp_path: Path) -> None:
    harness = Harness(start_controller(token="s3cret"), tmp_path, token="s3cret")
    try:
        program = _program(tmp_path, "noop.py", "pass\n")
        sweep_id = harness.sweep({"method": "grid", "program": program,
                                  "parameters": {"x": {"values": [1]}}})
        wrong = harness.agent(sweep_id, env={"OPENSWEEP_TOKEN": "nope"})
        missing = harness.agent(sweep_id)
        assert wrong.wait() == 5
        assert "refused the token" in wrong.err and "nope" not in wrong.err
        assert missing.wait() == 5
        assert "requires a token and none was given" in missing.err
        token_file = tmp_path / "token"
        token_file.write_text("s3cret\n")
        right = harness.agent(sweep_id, "--token-file", str(token_file))
        assert right.wait() == 0, right.err
        assert [_state(r) for r in harness.runs(sweep_id)] == ["finished"]
    finally:
        harness.cleanup()


def test_unknown_sweep_is_a_clear_error(harness: Harness) -> None:
    agent = harness.agent("zzzz9999")
    assert agent.wait() == 6
    assert "sweep 'zzzz9999' does not exist" in agent.err


def test_malformed_metric_lines_are_reported_once_and_skipped(harness: Harness,
                                                              tmp_path: Path) -> None:
    program = _program(tmp_path, "sloppy.py", """
        import os
        with open(os.environ["OPENSWEEP_METRICS"], "a") as f:
            f.write('{"loss": 1.0}\\nthis is not json\\n{"loss": NaN}\\n{"loss": 0.5}\\n')
    """)
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "metric": {"name": "loss", "goal": "minimize"},
                              "parameters": {"x": {"values": [1]}}})
    agent = harness.agent(sweep_id)
    assert agent.wait() == 0, agent.err
    assert agent.err.count("metrics line 2 is not valid JSON") == 1
    [run] = harness.runs(sweep_id)
    assert _state(run) == "finished"
    values = [r.values["loss"] for r in harness.metrics(run.id)]
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == 0.5


def test_heartbeats_keep_a_silent_long_run_alive(start_controller: StartController,
                                                 tmp_path: Path) -> None:
    # The run outlasts the heartbeat timeout several times over without a word on the stream
    # but the agent's heartbeats (at the interval the controller gave it).
    harness = Harness(start_controller(heartbeat_interval=0.2, heartbeat_timeout=0.8), tmp_path)
    try:
        program = _program(tmp_path, "quiet.py", "import time; time.sleep(2)\n")
        sweep_id = harness.sweep({"method": "grid", "program": program,
                                  "parameters": {"x": {"values": [1]}}})
        agent = harness.agent(sweep_id)
        assert agent.wait() == 0, agent.err
        [run] = harness.runs(sweep_id)
        assert _state(run) == "finished", run.reason
        assert "lost" not in harness.ctl.log_text()
    finally:
        harness.cleanup()


def test_a_controller_gone_for_good_ends_the_agent_with_status_4(own_harness: Harness,
                                                                  tmp_path: Path) -> None:
    harness = own_harness
    program = _program(tmp_path, "gated.py", """
        import os, time
        open(os.path.join(os.environ["OPENSWEEP_RUN_DIR"], "started"), "w").close()
        while not os.path.exists(os.environ["GATE"]):
            time.sleep(0.01)
    """)
    gate = tmp_path / "gate"
    sweep_id = harness.sweep({"method": "grid", "program": program,
                              "parameters": {"x": {"values": [1, 2]}}})
    agent = harness.agent(sweep_id, "--retry-timeout", "1", env={"GATE": str(gate)})
    wait_for(lambda: list((harness.workdir / "runs").glob("*/started")), timeout=30,
             what="the program to start")
    harness.ctl.kill()
    gate.write_text("go")
    assert agent.wait() == 4
    assert "cannot reach the controller" in agent.err
    assert "1 run outcome(s) were not delivered" in agent.err
    assert "finished" in agent.out  # the run itself went on without the controller


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make certificates")
def test_an_agent_works_with_a_tls_controller_given_its_ca(
        start_controller: StartController, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_sweep_cli import self_signed

    cert, key = self_signed(tmp_path, "controller")
    ctl = start_controller(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    monkeypatch.setenv("OPENSWEEP_TLS_CA", str(cert))  # for this test's own client calls
    harness = Harness(ctl, tmp_path)
    try:
        program = _program(tmp_path, "noop.py", "pass\n")
        sweep_id = harness.sweep({"method": "grid", "program": program,
                                  "parameters": {"x": {"values": [1]}}})
        plaintext = harness.agent(sweep_id, "--retry-timeout", "0.5")
        assert plaintext.wait() == 4
        assert "cannot reach the controller" in plaintext.err
        assert "--tls-ca" in plaintext.err
        agent = harness.agent(sweep_id, "--tls-ca", str(cert))
        assert agent.wait() == 0, agent.err
        assert [_state(r) for r in harness.runs(sweep_id)] == ["finished"]
    finally:
        harness.cleanup()
