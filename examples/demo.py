"""The README's demo (`make demo`): a whole sweep on this machine, start to finish.

1. starts `controller serve` on a fresh SQLite file in a temporary directory (port chosen by the
   OS, so it never collides with a controller already running);
2. creates a sweep from examples/demo.yaml (a 12-point grid over examples/train.py);
3. runs two `agent` processes that drain it, each printing a line per run;
4. prints the best run, then stops the controller and removes the temporary directory
   (``--keep`` leaves it, with the database and every run's logs, for a look around).

Needs nothing but this repository installed (``make demo`` does that); no network beyond loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
LISTENING = re.compile(r"listening on (\S+:\d+)")
START_TIMEOUT = 30.0
SWEEP_TIMEOUT = 120.0


def start_controller(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    log_path = workdir / "controller.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "serve", "--host", "127.0.0.1",
             "--port", "0", "--db", str(workdir / "opensweep.db")],
            stdout=subprocess.DEVNULL, stderr=log, cwd=workdir)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("demo: the controller did not start:\n"
                     + log_path.read_text(errors="replace"))


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=EXAMPLES / "demo.yaml",
                        help="the sweep config (default: examples/demo.yaml)")
    parser.add_argument("--agents", type=int, default=2, help="agent processes (default: 2)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (database, run logs)")
    args = parser.parse_args()

    # Imported here so `--help` works even before the project is installed.
    import opensweep
    from controller.client import sweep_stub, sync_channel
    from opensweep.v1 import sweeps_pb2

    workdir = Path(tempfile.mkdtemp(prefix="opensweep-demo-"))
    controller, address = start_controller(workdir)
    agents: list[subprocess.Popen[bytes]] = []
    started = time.monotonic()
    try:
        print(f"controller  {address}  (database {workdir / 'opensweep.db'})")
        sweep_id = opensweep.sweep(args.config, controller=address)
        print(f"sweep       {sweep_id}  from {args.config.name}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSWEEP_")}
        for n in range(args.agents):
            agent_log = open(workdir / f"agent-{n + 1}.log", "wb")  # noqa: SIM115
            agents.append(subprocess.Popen(
                [sys.executable, "-m", "agent.cli", sweep_id, "--controller", address,
                 "--dir", str(workdir / "runs")],
                cwd=args.config.resolve().parent, env=env, stderr=agent_log))
            agent_log.close()
        print(f"agents      {args.agents} started; one line per run:\n")
        deadline = time.monotonic() + SWEEP_TIMEOUT
        for proc in agents:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        failed = [n + 1 for n, proc in enumerate(agents) if proc.returncode != 0]
        if failed:
            logs = "\n".join((workdir / f"agent-{n}.log").read_text(errors="replace")
                             for n in failed)
            print(f"\ndemo: agent(s) {failed} failed:\n{logs}", file=sys.stderr)
            return 1

        with sync_channel(address) as channel:
            stub = sweep_stub(channel)
            sweep = stub.GetSweep(sweeps_pb2.GetSweepRequest(sweep_id=sweep_id), timeout=10)
            counts = sweep.run_counts
            print(f"\nsweep {sweep_id}: {sweeps_pb2.SweepState.Name(sweep.state)[12:].lower()}, "
                  f"{counts.finished} finished, {counts.failed} failed, "
                  f"{counts.crashed} crashed, {counts.stopped} stopped "
                  f"in {time.monotonic() - started:.1f} s")
            if not sweep.HasField("best_run_id"):
                print("no run reported the metric", file=sys.stderr)
                return 1
            best = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=sweep.best_run_id), timeout=10)
        print(f"best run    {best.id}: {sweep.metric_name} = {sweep.best_metric:.4f} "
              f"({sweep.metric_goal})")
        print(f"  config    {json.dumps(json.loads(best.config_json), sort_keys=True)}")
        return 0
    except subprocess.TimeoutExpired:
        print(f"demo: the sweep did not finish in {SWEEP_TIMEOUT:.0f} s", file=sys.stderr)
        return 1
    finally:
        for proc in agents:
            stop(proc)
        stop(controller)
        if args.keep:
            print(f"\nkept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
