"""Function mode's fork server: each run of a Python function in a fresh process group."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.forkserver import ForkLauncher
from agent.metrics import Record
from agent.runner import (
    METRICS_NAME,
    STDERR_NAME,
    STDOUT_NAME,
    Outcome,
    RunProcess,
    RunResult,
    group_alive,
)


def _behaviour() -> None:
    """What the forked run does, chosen by the run's environment."""
    mode = os.environ["MODE"]
    out = Path(os.environ["OUT"])
    if mode == "report":
        import opensweep

        run = opensweep.init(config={"lr": 1.0, "depth": 2})
        out.write_text(json.dumps({"pid": os.getpid(), "pgid": os.getpgid(0),
                                   "config": run.config.as_dict()}))
        run.log({"loss": 0.5})
        print("to stdout")
        run.finish()
    elif mode == "raise":
        raise RuntimeError("boom in train()")
    elif mode == "exit":
        sys.exit(7)
    elif mode == "sleep":
        import subprocess
        import time

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(os.environ["OPENSWEEP_METRICS"], "a") as f:
            f.write(json.dumps({"child": child.pid}) + "\n")
        time.sleep(60)


@pytest.fixture
def launcher() -> Iterator[ForkLauncher]:
    forks = ForkLauncher(_behaviour)
    yield forks
    forks.close()


def _run(launcher: ForkLauncher, tmp_path: Path, name: str, mode: str,
         stop_on_record: bool = False) -> tuple[RunResult, RunProcess, list[Record]]:
    run_dir = tmp_path / name
    run_dir.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "MODE": mode, "OUT": str(run_dir / "out.json"),
           "OPENSWEEP_RUN_ID": name, "OPENSWEEP_SWEEP_ID": "sweep123",
           "OPENSWEEP_CONFIG": json.dumps({"lr": 0.25}),
           "OPENSWEEP_METRICS": str(run_dir / METRICS_NAME)}
    records: list[Record] = []
    holder: list[RunProcess] = []

    def on_records(batch: list[Record]) -> None:
        records.extend(batch)
        if stop_on_record:
            holder[0].request_stop("stop command")

    process = RunProcess(run_id=name, run_dir=run_dir, argv=None, env=env, launcher=launcher,
                         grace_period=5.0, on_records=on_records)
    holder.append(process)
    result = asyncio.run(process.execute())
    return result, process, records


def test_each_run_is_a_fresh_process_in_its_own_group(launcher: ForkLauncher,
                                                      tmp_path: Path) -> None:
    seen = []
    for name in ("r1", "r2"):
        result, _, records = _run(launcher, tmp_path, name, "report")
        assert result.outcome is Outcome.FINISHED, (tmp_path / name / STDERR_NAME).read_text()
        report = json.loads((tmp_path / name / "out.json").read_text())
        assert report["pid"] == report["pgid"] != os.getpid()
        assert report["config"] == {"lr": 0.25, "depth": 2}
        assert [r.values for r in records] == [{"loss": 0.5}]
        assert (tmp_path / name / STDOUT_NAME).read_text() == "to stdout\n"
        seen.append(report["pid"])
    assert seen[0] != seen[1]


@pytest.mark.parametrize(("mode", "code", "needle"), [
    ("raise", 1, "RuntimeError: boom in train()"),
    ("exit", 7, ""),
])
def test_failures_give_their_exit_status(launcher: ForkLauncher, tmp_path: Path, mode: str,
                                         code: int, needle: str) -> None:
    result, _, _ = _run(launcher, tmp_path, "r", mode)
    assert result.outcome is Outcome.FAILED and result.exit_code == code
    stderr = (tmp_path / "r" / STDERR_NAME).read_text()
    assert needle in stderr
    assert "forkserver.py" not in stderr


def test_stop_kills_the_forked_run_and_its_children(launcher: ForkLauncher,
                                                    tmp_path: Path) -> None:
    result, process, records = _run(launcher, tmp_path, "r", "sleep", stop_on_record=True)
    assert result.outcome is Outcome.STOPPED and result.exit_code == -signal.SIGTERM
    assert process.pid is not None and not group_alive(process.pid)
    assert records


def test_a_run_after_a_crash_still_works(launcher: ForkLauncher, tmp_path: Path) -> None:
    assert _run(launcher, tmp_path, "a", "raise")[0].outcome is Outcome.FAILED
    assert _run(launcher, tmp_path, "b", "report")[0].outcome is Outcome.FINISHED




_FORK_UNDER_GRPC = '''
import asyncio, os, sys, threading, time
from concurrent import futures
from pathlib import Path
import opensweep  # first, as a user's script does: it settles gRPC's fork handling
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from agent.forkserver import ForkLauncher
from agent.runner import Outcome, RunProcess

server = grpc.server(futures.ThreadPoolExecutor(4))
health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()

def hammer():
    while True:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)

threading.Thread(target=hammer, daemon=True).start()
time.sleep(0.2)

def boom():
    raise RuntimeError("boom")

root = Path(sys.argv[1])
for i in range(int(sys.argv[2])):
    launcher = ForkLauncher(boom)  # forked while gRPC calls are in flight in other threads
    run_dir = root / f"r{i}"
    run_dir.mkdir()
    process = RunProcess(run_id=f"r{i}", run_dir=run_dir, argv=None, env={}, launcher=launcher,
                         grace_period=1.0, on_records=lambda records: None)
    result = asyncio.run(asyncio.wait_for(process.execute(), 20))
    assert result.outcome is Outcome.FAILED and result.exit_code == 1, result
    launcher.close()
print("ok")
'''


def test_forking_while_grpc_is_busy_in_other_threads_never_hangs(tmp_path: Path) -> None:
    """opensweep.sweep() then opensweep.agent(function=...) forks a process that has used gRPC;
    gRPC's fork handlers used to deadlock or abort the fork server now and then."""
    script = tmp_path / "fork_under_grpc.py"
    script.write_text(_FORK_UNDER_GRPC)
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), "100"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"
