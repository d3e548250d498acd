"""Agent latencies and overhead, measured with a real controller and real agent processes.

``python -m bench agent [--quick] [--runs N] [--stops N] [--seconds S]``

- **assignment -> first instruction**: from the controller's ``RunAssigned`` event (stamped when
  the controller decided, before the commit and the reply) to the first thing the program does.
  The program is ``/bin/date +%s.%N`` so the figure is the agent's and the OS's cost, not an
  interpreter's start-up; the same with ``python -S -c`` is given for reference.
- **stop -> group gone**: from the ``CancelSweep`` call to the moment no process of the run's
  group is left (polled every millisecond through /proc). The program obeys SIGTERM; its child
  process too (both default handlers).
- **agent CPU while tailing 1,000 metrics/s**: the agent process's user+system CPU time (from
  /proc) over a window in which the program appends 1,000 JSON lines a second, each with 4
  metrics, divided by the window's wall time; and the same for a program that logs nothing, the
  agent's floor. Every record's arrival at the controller is checked.

Figures are medians (and p90) over the given repetitions; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench
from bench.controller import controller_argv

REPO = Path(__file__).resolve().parents[1]
LISTENING = "listening on "


class Controller:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        log_path = workdir / "controller.log"
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                controller_argv(workdir / "bench.db", 0),
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=workdir,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if LISTENING in text:
                self.address = text.split(LISTENING, 1)[1].split()[0]
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited:\n{text}")
            time.sleep(0.02)
        else:
            raise RuntimeError("controller did not start")
        from controller.client import sweep_stub, sync_channel

        self.channel = sync_channel(self.address)
        self.stub = sweep_stub(self.channel)

    def sweep(self, config: dict[str, Any]) -> str:
        from opensweep.v1 import sweeps_pb2

        reply = self.stub.CreateSweep(
            sweeps_pb2.CreateSweepRequest(config=json.dumps(config)), timeout=30
        )
        return str(reply.sweep.id)

    def events(self, sweep_id: str) -> list[Any]:
        from opensweep.v1 import sweeps_pb2

        return list(
            self.stub.ReadEvents(sweeps_pb2.ReadEventsRequest(sweep_id=sweep_id), timeout=30)
        )

    def runs(self, sweep_id: str) -> list[Any]:
        from opensweep.v1 import sweeps_pb2

        return list(
            self.stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id), timeout=30).runs
        )

    def close(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_agent(
    ctl: Controller, sweep_id: str, runs_dir: Path, *extra: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSWEEP_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent.cli",
            sweep_id,
            "--controller",
            ctl.address,
            "--dir",
            str(runs_dir),
            "--quiet",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=runs_dir.parent,
    )


def summarize(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "median_ms": statistics.median(ordered),
        "p90_ms": p90,
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "n": len(ordered),
    }


def assignment_latency(
    ctl: Controller, work: Path, runs: int, command: list[str], label: str
) -> dict[str, Any]:
    sweep_id = ctl.sweep(
        {
            "name": f"bench-latency-{label}",
            "method": "grid",
            "command": command,
            "parameters": {"i": {"values": list(range(runs))}},
        }
    )
    runs_dir = work / f"latency-{len(list(work.glob('latency-*')))}"
    runs_dir.mkdir()
    agent = start_agent(ctl, sweep_id, runs_dir)
    agent.wait(timeout=300)
    assigned: dict[str, float] = {}
    started: dict[str, float] = {}
    ended: list[float] = []
    for event in ctl.events(sweep_id):
        data = json.loads(event.data_json)
        if event.type == "RunAssigned":
            assigned[data["run_id"]] = event.time
        elif event.type == "RunStarted":
            started[data["run_id"]] = event.time
        elif event.type == "RunEnded":
            ended.append(event.time)
    to_first: list[float] = []
    to_reported: list[float] = []
    for run_id, at in assigned.items():
        stdout = (runs_dir / run_id / "stdout.log").read_text().strip()
        to_first.append((float(stdout.splitlines()[-1]) - at) * 1000)
        if run_id in started:
            to_reported.append((started[run_id] - at) * 1000)
    cycle_ms = (max(ended) - min(assigned.values())) * 1000 / len(ended)
    return {
        "label": label,
        "program": " ".join(command),
        "to_first_instruction": summarize(to_first),
        "to_run_started_event": summarize(to_reported),
        "cycle_ms_per_run": cycle_ms,
    }


def _group_alive(pgid: int) -> bool:
    from agent.runner import group_alive

    return group_alive(pgid)


STOP_PROGRAM = """
import json, os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-S", "-c", "import time; time.sleep(300)"])
with open(os.environ["OPENSWEEP_METRICS"], "a") as f:
    f.write(json.dumps({"pid": os.getpid(), "child": child.pid}) + "\\n")
time.sleep(300)
"""


def stop_latency(ctl: Controller, work: Path, repeats: int) -> dict[str, Any]:
    from opensweep.v1 import sweeps_pb2

    program = work / "sleeper.py"
    program.write_text(STOP_PROGRAM)
    gone: list[float] = []
    reported: list[float] = []
    for n in range(repeats):
        sweep_id = ctl.sweep(
            {
                "name": f"bench-stop-{n}",
                "method": "grid",
                "program": str(program),
                "parameters": {"i": {"values": [0]}},
            }
        )
        runs_dir = work / f"stop-{n}"
        runs_dir.mkdir()
        agent = start_agent(ctl, sweep_id, runs_dir)
        deadline = time.monotonic() + 60
        pid = None
        while pid is None and time.monotonic() < deadline:
            for path in runs_dir.glob("*/metrics.jsonl"):
                lines = path.read_text().splitlines()
                if lines:
                    pid = int(json.loads(lines[0])["pid"])
            time.sleep(0.005)
        if pid is None:
            agent.kill()
            raise RuntimeError("the sleeper never started")
        t0 = time.time()
        ctl.stub.CancelSweep(sweeps_pb2.SweepCommandRequest(sweep_id=sweep_id), timeout=30)
        while _group_alive(pid):
            time.sleep(0.001)
        gone.append((time.time() - t0) * 1000)
        agent.wait(timeout=60)
        for event in ctl.events(sweep_id):
            if event.type == "RunEnded":
                reported.append((event.time - t0) * 1000)
    return {
        "group_gone_after_cancel": summarize(gone),
        "run_ended_event_after_cancel": summarize(reported),
    }


TAIL_PROGRAM = """
import json, os, sys, time
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
total = int(rate * seconds)
start = time.monotonic()
with open(os.environ["OPENSWEEP_METRICS"], "a", buffering=1) as f:
    for i in range(total):
        if rate:
            f.write(json.dumps({"_step": i, "loss": 1.0 / (i + 1), "acc": i / total,
                                "lr": 0.001, "grad_norm": 0.5}) + "\\n")
        target = start + (i + 1) / rate if rate else start + seconds
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    if not rate:
        time.sleep(seconds)
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tail_overhead(ctl: Controller, work: Path, rate: int, seconds: float) -> dict[str, Any]:
    program = work / "logger.py"
    program.write_text(TAIL_PROGRAM)
    sweep_id = ctl.sweep(
        {
            "name": f"bench-tail-{rate}",
            "method": "grid",
            "command": ["${interpreter}", str(program), str(rate), str(seconds)],
            "parameters": {"i": {"values": [0]}},
        }
    )
    runs_dir = work / f"tail-{rate}"
    runs_dir.mkdir()
    agent = start_agent(ctl, sweep_id, runs_dir)
    # Measure the middle of the run: after the agent has started it, before it ends.
    deadline = time.monotonic() + 60
    while not list(runs_dir.glob("*/metrics.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(min(1.0, seconds / 5))
    cpu0, wall0 = _cpu_seconds(agent.pid), time.monotonic()
    time.sleep(seconds * 0.6)
    cpu1, wall1 = _cpu_seconds(agent.pid), time.monotonic()
    agent.wait(timeout=120)
    [run] = ctl.runs(sweep_id)
    expected = int(rate * seconds)
    return {
        "rate_per_second": rate,
        "cpu_percent": 100 * (cpu1 - cpu0) / (wall1 - wall0),
        "window_seconds": wall1 - wall0,
        "records_expected": expected,
        "records_stored": run.metric_count,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Agent benchmark",
        "",
        "Real `controller serve` and `agent` processes on loopback; medians (p90).",
        "",
        "| figure | median | p90 | n |",
        "|---|---|---|---|",
    ]
    for item in report.get("latency", []):
        for key, label in (
            ("to_first_instruction", "assignment -> first instruction"),
            ("to_run_started_event", "assignment -> RunStarted recorded"),
        ):
            s = item[key]
            lines.append(
                f"| {label} ({item['label']}) | {s['median_ms']:.1f} ms | "
                f"{s['p90_ms']:.1f} ms | {s['n']} |"
            )
        lines.append(
            f"| one run's whole cycle, one agent, back to back ({item['label']}) | "
            f"{item['cycle_ms_per_run']:.1f} ms | | {item['to_first_instruction']['n']} |"
        )
    stop = report.get("stop")
    if stop:
        for key, label in (
            ("group_gone_after_cancel", "cancel -> process group gone"),
            ("run_ended_event_after_cancel", "cancel -> RunEnded(stopped) recorded"),
        ):
            s = stop[key]
            lines.append(f"| {label} | {s['median_ms']:.1f} ms | {s['p90_ms']:.1f} ms | {s['n']} |")
    for item in report.get("tail", []):
        lines.append(
            f"| agent CPU, program logging {item['rate_per_second']:,}/s | "
            f"{item['cpu_percent']:.1f} % of a core | | "
            f"{item['records_stored']:,}/{item['records_expected']:,} records |"
        )
    s = report["settings"]
    lines += [
        "",
        f"Measured {s['finished_at']} with `python -m bench agent"
        f"{' --quick' if s['quick'] else ''}` ({s['wall_seconds']:.0f} s wall; 1-minute load "
        f"average {s['load_average_1min'][0]:.1f} before, {s['load_average_1min'][1]:.1f} after, "
        f"on {os.cpu_count()} CPUs).",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench agent", description=__doc__)
    p.add_argument("--quick", action="store_true", help="few repetitions, short windows")
    p.add_argument("--runs", type=int, help="runs for the assignment latency (default 40)")
    p.add_argument("--stops", type=int, help="stop repetitions (default 10)")
    p.add_argument("--seconds", type=float, help="length of the tailing runs (default 10)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--out", help="output directory (default bench/results[/quick])")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path("/proc/self/stat").exists():
        print("bench agent: needs Linux /proc", file=sys.stderr)
        return 2
    environment = bench.environment()
    runs = args.runs or (10 if args.quick else 40)
    stops = args.stops or (3 if args.quick else 10)
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    out_dir = bench.results_dir(args.quick, args.out)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="opensweep-bench-agent-"))
    report: dict[str, Any] = {"benchmark": "agent"}
    ctl = Controller(work)
    try:
        print(f"agent bench: assignment latency over {runs} runs", flush=True)
        report["latency"] = [
            assignment_latency(ctl, work, runs, ["/bin/date", "+%s.%N"], "/bin/date"),
            assignment_latency(
                ctl,
                work,
                runs,
                ["${interpreter}", "-S", "-c", "import time; print(repr(time.time()))"],
                "python -S",
            ),
        ]
        print(f"agent bench: stop latency x{stops}", flush=True)
        report["stop"] = stop_latency(ctl, work, stops)
        print(f"agent bench: CPU while tailing ({seconds:g} s runs)", flush=True)
        report["tail"] = [
            tail_overhead(ctl, work, 0, seconds),
            tail_overhead(ctl, work, 1000, seconds),
        ]
    finally:
        ctl.close()
        if args.keep:
            print(f"agent bench: work directory {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report["settings"] = {
        "quick": args.quick,
        "runs": runs,
        "stops": stops,
        "seconds": seconds,
        "wall_seconds": time.monotonic() - started,
        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        # Latencies on a shared 2-core machine depend on what else runs: say how busy it was.
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }
    report["environment"] = environment
    bench.write_json(out_dir / "agent.json", report)
    (out_dir / "agent.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
