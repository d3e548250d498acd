"""The controller's throughput, replay and restart, measured against a bare grpcio baseline.

Three figures (issue 3):

1. **Suggestions per second** served to ``--clients`` (64) concurrent agents over loopback,
   each on its own channel and its own ``Connect`` stream, doing what a real agent does for a
   run: ``RequestRun`` -> ``RunAssignment``, ``RunStarted``, ``RunEnded`` -> ``Ack``. The
   controller is the real ``controller serve`` process on a fresh SQLite file (WAL,
   synchronous=FULL: every assignment and every run end durable before it is answered) with a
   ``method: random`` sweep. The baseline is ``bench._echo_server``: a bare grpcio asyncio
   server answering the same messages with canned replies and no work. Both are driven by the
   same client code in this process, in alternating rounds, so the machine's noise hits both;
   the figure is the ratio controller / echo (aim >= 0.7).
2. **Replay**: seconds to rebuild the state from a log of ``--events`` (1,000,000) events —
   reading every event from the store and folding it — with no snapshot.
3. **Restart**: seconds from starting ``controller serve`` on that log until it answers a
   request, with and without a snapshot.

``python -m bench controller [--quick] [--clients N] [--seconds S] [--rounds N]
[--events N] [--skip-throughput] [--skip-replay] [--out DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench

ROOT = Path(__file__).resolve().parent.parent

SWEEP_CONFIG = """\
method: random
metric: {name: loss, goal: minimize}
parameters:
  learning_rate: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-1}
  batch_size: {values: [16, 32, 64, 128]}
  optimizer: {values: [adam, sgd, adamw]}
  dropout: {min: 0.0, max: 0.5}
"""


# --- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    """A server process under test and the address it listens on."""

    name: str
    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


_PORT_LINE = re.compile(r"^PORT (\d+)$", re.M)


def _wait_for_port(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> int:
    """The port a starting server prints (``PORT <n>`` on stdout), or an error with its log."""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    seen = ""
    while time.monotonic() < deadline:
        with suppress(BlockingIOError):
            seen += os.read(fd, 65536).decode(errors="replace")
        m = _PORT_LINE.search(seen)
        if m:
            return int(m.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.02)
    log = log_path.read_text() if log_path.exists() else ""
    raise RuntimeError(
        f"server did not report a port within {timeout:.0f} s "
        f"(exit {process.poll()}); stdout: {seen[-2000:]!r}; log: {log[-2000:]!r}"
    )


def _spawn(name: str, argv: list[str], work: Path, timeout: float = 120.0) -> Server:
    log_path = work / f"{name}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        port = _wait_for_port(process, log_path, timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return Server(name, process, f"127.0.0.1:{port}", log_path)


def start_echo(work: Path) -> Server:
    return _spawn("echo", [sys.executable, "-m", "bench._echo_server", "--port", "0"], work)


def controller_argv(db: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "controller.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        str(db),
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(address: str, timeout: float) -> bool:
    """True once the server at ``address`` answers a real request (ListSweeps)."""
    import grpc

    from opensweep.v1 import sweeps_pb2, sweeps_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            sweeps_pb2_grpc.SweepServiceStub(channel).ListSweeps(
                sweeps_pb2.ListSweepsRequest(), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return True


def start_controller(work: Path, db: Path, timeout: float = 300.0) -> tuple[Server, float]:
    """``controller serve`` on ``db``, and the seconds from spawning it to its first answer."""
    port = _free_port()
    log_path = work / f"controller-{port}.log"
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            controller_argv(db, port),
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    address = f"127.0.0.1:{port}"
    while not _answers(address, 0.5):
        if process.poll() is not None or time.perf_counter() - started > timeout:
            process.kill()
            process.wait()
            raise RuntimeError(
                f"controller serve did not answer within {timeout:.0f} s (exit "
                f"{process.returncode}); log: {log_path.read_text()[-2000:]!r}"
            )
        time.sleep(0.01)
    return Server("controller", process, address, log_path), time.perf_counter() - started


# --- the agents' side -----------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients did inside the measured window."""

    assignments: int = 0
    assignments_total: int = 0
    """Including warm-up and wind-down: the denominator of the server's CPU per suggestion."""
    latencies: list[float] = field(default_factory=list)
    no_runs: int = 0
    errors: list[str] = field(default_factory=list)


async def create_sweep(address: str) -> str:
    import grpc

    from opensweep.v1 import sweeps_pb2, sweeps_pb2_grpc

    async with grpc.aio.insecure_channel(address) as channel:
        stub = sweeps_pb2_grpc.SweepServiceStub(channel)
        reply = await stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config=SWEEP_CONFIG, seed=1))
        return str(reply.sweep.id)


async def _read_kind(call: Any, wanted: tuple[str, ...]) -> Any:
    """The next message of one of the ``wanted`` kinds (others, e.g. stray acks, skipped)."""
    import grpc

    while True:
        message = await call.read()
        if message is grpc.aio.EOF:
            raise RuntimeError(f"stream closed while waiting for {wanted}")
        if message.WhichOneof("kind") in wanted:
            return message


async def _agent(
    address: str,
    sweep_id: str,
    tally: Tally,
    window: list[float],
    ready: asyncio.Barrier,
) -> None:
    """One simulated agent: register, connect, then run empty runs until the window closes.

    ``window`` is ``[start, end]`` in ``perf_counter`` seconds, set by the driver once every
    agent is connected (read after the barrier).
    """
    import grpc

    from opensweep.v1 import agents_pb2, agents_pb2_grpc, sweeps_pb2

    async with grpc.aio.insecure_channel(address) as channel:
        stub = agents_pb2_grpc.AgentServiceStub(channel)
        reg = await stub.RegisterAgent(
            agents_pb2.RegisterAgentRequest(sweep_id=sweep_id, hostname="bench", pid=os.getpid())
        )
        call = stub.Connect()
        await call.write(agents_pb2.AgentMessage(hello=agents_pb2.Hello(agent_id=reg.agent_id)))
        await _read_kind(call, ("welcome",))
        await ready.wait()
        start, end = window
        request = agents_pb2.AgentMessage(request_run=agents_pb2.RequestRun())
        finished = sweeps_pb2.RUN_STATE_FINISHED
        pid = os.getpid()
        while time.perf_counter() < end:
            sent = time.perf_counter()
            await call.write(request)
            reply = await _read_kind(call, ("run", "no_run"))
            got = time.perf_counter()
            counted = start <= sent and got <= end
            if reply.WhichOneof("kind") == "no_run":
                if counted:
                    tally.no_runs += 1
                await asyncio.sleep(min(reply.no_run.retry_after_seconds or 0.05, 0.05))
                continue
            run_id = reply.run.run_id
            tally.assignments_total += 1
            if counted:
                tally.assignments += 1
                tally.latencies.append(got - sent)
            await call.write(
                agents_pb2.AgentMessage(run_started=agents_pb2.RunStarted(run_id=run_id, pid=pid))
            )
            await call.write(
                agents_pb2.AgentMessage(
                    run_ended=agents_pb2.RunEnded(
                        run_id=run_id, state=finished, exit_code=0, reason="exit status 0"
                    )
                )
            )
            while True:
                ack = await _read_kind(call, ("ack",))
                if ack.ack.run_id == run_id and ack.ack.run_ended:
                    break
        await call.write(agents_pb2.AgentMessage(goodbye=agents_pb2.Goodbye(reason="bench done")))
        await call.done_writing()
        try:
            while await call.read() is not grpc.aio.EOF:
                pass
        except grpc.aio.AioRpcError:
            pass


async def drive(address: str, sweep_id: str, clients: int, warmup: float, seconds: float) -> Tally:
    """``clients`` agents at once; counts what happens in [warm-up end, warm-up end + seconds]."""
    tally = Tally()
    ready = asyncio.Barrier(clients + 1)
    window = [0.0, 0.0]

    async def one(i: int) -> None:
        try:
            await _agent(address, sweep_id, tally, window, ready)
        except Exception as exc:
            tally.errors.append(f"agent {i}: {type(exc).__name__}: {exc}")
            await ready.abort()

    tasks = [asyncio.create_task(one(i)) for i in range(clients)]
    with suppress(asyncio.BrokenBarrierError):
        await ready.wait()
    now = time.perf_counter()
    window[0], window[1] = now + warmup, now + warmup + seconds
    await asyncio.gather(*tasks)
    return tally


def summarise(tally: Tally, seconds: float) -> dict[str, Any]:
    lat = sorted(tally.latencies)

    def pct(q: float) -> float | None:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3 if lat else None

    return {
        "suggestions_per_s": tally.assignments / seconds,
        "assignments": tally.assignments,
        "no_runs": tally.no_runs,
        "latency_ms_p50": pct(0.5),
        "latency_ms_p99": pct(0.99),
        "errors": tally.errors[:5],
    }


@contextmanager
def _workdir(keep: bool) -> Any:
    path = Path(tempfile.mkdtemp(prefix="opensweep-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def commit_latency_ms(work: Path, commits: int = 100) -> dict[str, float]:
    """Milliseconds per SQLite commit (WAL, synchronous=FULL) on the disk under the work dir.

    Context for the throughput figure: every assignment waits for one such commit (shared with
    whatever else was queued), so a slow or busy disk caps suggestions/s whatever the code does.
    """
    import sqlite3

    db = sqlite3.connect(work / "commit-probe.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (x TEXT)")
    times = []
    for i in range(commits):
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (f"row {i}",))
        db.execute("COMMIT")
        times.append((time.perf_counter() - started) * 1e3)
    db.close()
    times.sort()
    return {"median": times[len(times) // 2], "p90": times[int(0.9 * len(times))]}


def throughput(
    clients: int, seconds: float, warmup: float, rounds: int, work: Path
) -> dict[str, Any]:
    """Alternating rounds against the echo baseline and the controller, one process each."""
    servers: dict[str, Server] = {}
    missing: dict[str, str] = {}
    servers["echo"] = start_echo(work)
    try:
        servers["controller"], _ = start_controller(work, work / "throughput.db")
    except (RuntimeError, OSError) as exc:
        missing["controller"] = str(exc)
    try:
        sweep_ids = {name: asyncio.run(create_sweep(s.address)) for name, s in servers.items()}
        rows: list[dict[str, Any]] = []
        for r in range(rounds):
            # Alternate who goes first so neither always gets the warmer (or noisier) slot.
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            for name in order:
                cpu_before = _cpu_seconds(servers[name].process.pid)
                client_before = time.process_time()
                tally = asyncio.run(
                    drive(servers[name].address, sweep_ids[name], clients, warmup, seconds)
                )
                cpu = _cpu_seconds(servers[name].process.pid) - cpu_before
                client_cpu = time.process_time() - client_before
                row = {"server": name, "round": r, **summarise(tally, seconds)}
                row["server_cpu_ms_per_suggestion"] = (
                    cpu * 1e3 / tally.assignments_total if tally.assignments_total else None
                )
                # The 64 agents share this process's one core: when it is near 1 ms of CPU per
                # ms of wall time, the clients, not the server, set the pace.
                row["client_cpu_ms_per_suggestion"] = (
                    client_cpu * 1e3 / tally.assignments_total if tally.assignments_total else None
                )
                rows.append(row)
                print(
                    f"  round {r} {name}: {row['suggestions_per_s']:.0f} suggestions/s, "
                    f"p50 {row['latency_ms_p50'] or float('nan'):.1f} ms"
                    + (f", errors: {row['errors'][0]}" if row["errors"] else ""),
                    flush=True,
                )
    finally:
        for s in servers.values():
            s.stop()
    out: dict[str, Any] = {
        "clients": clients,
        "seconds_per_round": seconds,
        "warmup_seconds": warmup,
        "rounds": rows,
        "missing": missing,
        "disk_commit_ms": commit_latency_ms(work),
    }
    rates = {
        name: [r["suggestions_per_s"] for r in rows if r["server"] == name and not r["errors"]]
        for name in servers
    }
    for name, values in rates.items():
        out[f"{name}_median_per_s"] = statistics.median(values) if values else None
    if rates.get("controller") and rates.get("echo"):
        out["ratio_controller_over_echo"] = statistics.median(
            rates["controller"]
        ) / statistics.median(rates["echo"])
        pairs = [
            c["suggestions_per_s"] / e["suggestions_per_s"]
            for c in rows
            for e in rows
            if c["server"] == "controller"
            and e["server"] == "echo"
            and c["round"] == e["round"]
            and e["suggestions_per_s"] > 0
        ]
        out["ratio_per_round"] = pairs
    return out


def _replay_tool(*args: str, timeout: float = 1800.0) -> dict[str, Any]:
    """Run ``python -m bench._replay ARGS`` in a fresh process; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "bench._replay", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench._replay {' '.join(args)} failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _restart(work: Path, db: Path) -> float:
    """Seconds from starting ``controller serve`` on ``db`` to its first answer; then SIGTERM
    (a graceful stop writes a snapshot when the log moved on since the last one)."""
    server, seconds = start_controller(work, db)
    server.stop()
    return seconds


def _build_or_reuse(events: int, db: Path) -> dict[str, Any]:
    """The log to measure: built at ``db``, or reused when ``db`` holds one built earlier with
    the same size (its build figures are kept beside it in ``<db>.build.json``). A reused log
    has its snapshots dropped, so every run starts without one."""
    import sqlite3

    info = db.with_name(db.name + ".build.json")
    if db.exists() and info.exists():
        build = dict(json.loads(info.read_text()))
        if build.get("events") == events:
            with sqlite3.connect(db) as conn:
                conn.execute("DELETE FROM snapshots")
            build["reused"] = True
            print(f"  reusing the {events:,}-event log {db}", flush=True)
            return build
        raise RuntimeError(f"{db} holds a log of {build.get('events')} events, not {events}")
    if db.exists():
        raise RuntimeError(f"{db} exists but was not built by this benchmark; give a new path")
    build = _replay_tool("build", str(db), "--events", str(events))
    info.write_text(json.dumps(build) + "\n")
    return build


def _snapshot_bytes(db: Path) -> int | None:
    import sqlite3

    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT length(data) FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
    return int(row[0]) if row else None


def replay_and_restart(events: int, work: Path, repeats: int,
                       replay_db: Path | None = None) -> dict[str, Any]:
    """Build a log of ``events`` events (or reuse ``replay_db``), then time replay and
    restarts, each in a new process.

    Order matters: the log starts without a snapshot; the first graceful stop of
    ``controller serve`` writes one, and the later opens use it.
    """
    db = replay_db or work / "replay.db"
    empty = work / "empty.db"
    out: dict[str, Any] = {"events": events}
    out["build"] = _build_or_reuse(events, db)
    print(f"  built {events:,} events in {out['build']['build_seconds']:.1f} s", flush=True)
    # Reference: what a restart costs with nothing to replay (interpreter, imports, bind).
    out["restart_empty_seconds"] = [_restart(work, empty) for _ in range(repeats)]
    out["replay_no_snapshot"] = [_replay_tool("open", str(db)) for _ in range(repeats)]
    out["restart_no_snapshot_seconds"] = [_restart(work, db)]
    print(f"  replay without snapshot: {out['replay_no_snapshot']}", flush=True)
    snap = _replay_tool("open", str(db), "--snapshot")
    out["snapshot_write_seconds"] = snap["snapshot_write_seconds"]
    out["snapshot_bytes"] = _snapshot_bytes(db)
    out["replay_with_snapshot"] = [_replay_tool("open", str(db)) for _ in range(repeats)]
    out["restart_with_snapshot_seconds"] = [_restart(work, db) for _ in range(repeats)]
    print(f"  replay with snapshot: {out['replay_with_snapshot']}", flush=True)
    out["db_bytes"] = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")
                          if not p.name.endswith((".json", ".lock")))
    med = statistics.median
    out["replay_seconds"] = med(r["open_seconds"] for r in out["replay_no_snapshot"])
    out["floor_seconds"] = med(r["floor_seconds"] for r in out["replay_no_snapshot"])
    out["scan_seconds"] = med(r["scan_seconds"] for r in out["replay_no_snapshot"])
    out["replay_cpu_seconds"] = med(r["open_cpu_seconds"] for r in out["replay_no_snapshot"])
    out["replay_with_snapshot_cpu_seconds"] = med(
        r["open_cpu_seconds"] for r in out["replay_with_snapshot"])
    out["replay_over_floor"] = med(
        r["open_seconds"] / r["floor_seconds"] for r in out["replay_no_snapshot"]
    )
    out["replay_with_snapshot_seconds"] = med(
        r["open_seconds"] for r in out["replay_with_snapshot"]
    )
    out["restart_seconds"] = {
        "empty_log": med(out["restart_empty_seconds"]),
        "no_snapshot": med(out["restart_no_snapshot_seconds"]),
        "with_snapshot": med(out["restart_with_snapshot_seconds"]),
    }
    return out


def _replay_markdown(r: dict[str, Any]) -> list[str]:
    b = r["build"]
    rs = r["restart_seconds"]
    scale = 1_000_000 / r["events"]
    return [
        f"A log of {r['events']:,} events ({b['sweeps']} sweeps, {b['runs']:,} runs; each run "
        f"RunAssigned, RunStarted, {8} MetricsLogged of 5 records, RunEnded), written through "
        f"the real EventStore in {b['build_seconds']:.1f} s ({b['commits']} group commits), "
        f"{r['db_bytes'] / 1e6:.0f} MB on disk. Each figure is a fresh process.",
        "",
        "| what | seconds | aim |",
        "|---|---|---|",
        f"| replay, no snapshot (`Controller.open`: read + decode + fold) | "
        f"{bench.fmt(r['replay_seconds'])} | <= 5 s for 1,000,000 events"
        + (f" (x{scale:g} here: {bench.fmt(r['replay_seconds'] * scale)} s)" if scale != 1 else "")
        + " |",
        f"| floor: plain sqlite3 scan + `json.loads` of every event, same process | "
        f"{bench.fmt(r['floor_seconds'])} | |",
        f"| **replay / floor** | **{bench.fmt(r['replay_over_floor'])}x** | |",
        f"| plain sqlite3 scan of every row, nothing parsed, same process | "
        f"{bench.fmt(r.get('scan_seconds'))} | |",
        f"| replay, no snapshot: CPU seconds of the process (both threads) | "
        f"{bench.fmt(r.get('replay_cpu_seconds'))} | |",
        f"| replay from a snapshot at the end of the log | "
        f"{bench.fmt(r['replay_with_snapshot_seconds'])} (CPU "
        f"{bench.fmt(r.get('replay_with_snapshot_cpu_seconds'))}) | |",
        f"| writing that snapshot | {bench.fmt(r['snapshot_write_seconds'])} | "
        + (f"{r['snapshot_bytes'] / 1e6:.0f} MB of JSON |" if r.get("snapshot_bytes") else "|"),
        f"| restart `controller serve` to first answer, empty log | "
        f"{bench.fmt(rs['empty_log'])} | (reference: interpreter + imports) |",
        f"| restart to first answer, no snapshot | {bench.fmt(rs['no_snapshot'])} | |",
        f"| restart to first answer, with snapshot | {bench.fmt(rs['with_snapshot'])} | |",
        "",
    ]


def _measured_line(what: str, part: dict[str, Any], flag: str) -> str:
    m = part.get("measured") or {}
    env = m.get("environment") or {}
    wall = m.get("wall_seconds")
    load = m.get("load_average")
    return (f"{what} measured {m.get('finished_at')} with `python -m bench controller"
            f"{' --quick' if m.get('quick') else ''} {flag}`"
            + (f" ({wall:.0f} s wall)" if wall is not None else "")
            + (f", load average {load[0]:.1f} at the start and {load[1]:.1f} at the end"
               if load else "")
            + f", {bench.code_note(env)}.")


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Controller: throughput, replay, restart", ""]
    if report.get("throughput"):
        lines.append(_measured_line("Throughput", report["throughput"], "--skip-replay"))
    if report.get("replay"):
        lines.append(_measured_line("Replay and restart", report["replay"],
                                    "--skip-throughput"))
    lines += ["Each part is measured on its own (two invocations); a run that skips a part keeps "
              "the earlier figures of that part. Shared 2-core machine.", ""]
    t = report.get("throughput")
    if t:
        lines += [
            "## Suggestions per second, 64 concurrent agents over loopback",
            "",
            f"{t['clients']} agents, each on its own channel and stream, cycling RequestRun -> "
            f"RunAssignment, RunStarted, RunEnded -> Ack; {t['seconds_per_round']:g} s per round "
            f"after {t['warmup_seconds']:g} s warm-up, echo and controller rounds alternating. "
            "The controller makes every assignment and every run end durable (SQLite WAL, "
            "synchronous=FULL) before answering; the echo server answers from memory.",
            "",
            "| server | suggestions/s (median) | per round | p50 / p99 latency ms (median) "
            "| server CPU ms per suggestion (median) | client CPU ms per suggestion (median) |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("echo", "controller"):
            rows = [r for r in t["rounds"] if r["server"] == name]
            if not rows:
                why = t["missing"].get(name, "not run")
                lines.append(f"| {name} | not run: {why[:200]} | | | | |")
                continue

            def med(key: str, rows: list[dict[str, Any]] = rows) -> float | None:
                values = [r[key] for r in rows if r.get(key) is not None]
                return statistics.median(values) if values else None

            lines.append(
                f"| {name} | {bench.fmt(t.get(f'{name}_median_per_s'))} | "
                + ", ".join(f"{r['suggestions_per_s']:.0f}" for r in rows)
                + f" | {bench.fmt(med('latency_ms_p50'))} / {bench.fmt(med('latency_ms_p99'))} | "
                f"{bench.fmt(med('server_cpu_ms_per_suggestion'))} | "
                f"{bench.fmt(med('client_cpu_ms_per_suggestion'))} |"
            )
        ratio = t.get("ratio_controller_over_echo")
        disk = t.get("disk_commit_ms")
        if disk:
            lines += [
                "",
                f"Disk: one SQLite commit (WAL, synchronous=FULL) took {bench.fmt(disk['median'])}"
                f" ms (median; p90 {bench.fmt(disk['p90'])} ms) in this run; a suggestion cycle "
                "waits for two (the assignment, then the run's end), shared with other agents'.",
            ]
        lines += [
            "",
            f"**Ratio controller / echo: {bench.fmt(ratio)}** (aim >= 0.7); per round: "
            + ", ".join(f"{x:.2f}" for x in t.get("ratio_per_round", [])),
            "",
        ]
    r = report.get("replay")
    if r:
        lines += ["## Replay and restart", ""]
        if "error" in r:
            lines += [f"Not run: {r['error']}", ""]
        else:
            lines += _replay_markdown(r)
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench controller", description=__doc__)
    p.add_argument("--quick", action="store_true", help="1 round of 3 s; 100,000 events")
    p.add_argument("--clients", type=int, default=64, help="concurrent agents (default 64)")
    p.add_argument("--seconds", type=float, help="measured seconds per round (default 8)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per round")
    p.add_argument("--rounds", type=int, help="rounds per server (default 6; quick 1)")
    p.add_argument("--events", type=int, help="events in the replay log (default 1,000,000)")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-replay", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, dbs)")
    p.add_argument("--replay-db", metavar="PATH",
                   help="build the replay log here once and reuse it in later runs (its "
                        "snapshots are dropped at each start); default: a new one per run")
    p.add_argument("--out", help="output directory (default bench/results[/quick])")
    return p.parse_args(argv)


def _earlier_parts(path: Path) -> dict[str, dict[str, Any]]:
    """The parts (``throughput``, ``replay``) of the results file at ``path``, each with the
    ``measured`` note saying when and on which code: a run that skips a part keeps that part
    as it was measured, rather than dropping it."""
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    parts: dict[str, dict[str, Any]] = {}
    for name in ("throughput", "replay"):
        part = old.get(name)
        if not part:
            continue
        if "measured" not in part:  # a file written before parts carried their own note
            settings = old.get("settings", {})
            env = old.get("environment_replay" if name == "replay" else "environment")
            note = settings.get("parts", {}).get(name, settings)
            part = {**part, "measured": {"finished_at": note.get("finished_at"),
                                         "wall_seconds": note.get("wall_seconds"),
                                         "quick": note.get("quick", False),
                                         "environment": env or old.get("environment", {})}}
        parts[name] = part
    return parts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environment = bench.environment()  # before the run: the code as it was when measured
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    rounds = args.rounds or (1 if args.quick else 6)
    events = args.events or (100_000 if args.quick else 1_000_000)
    out_dir = bench.results_dir(args.quick, args.out)
    report: dict[str, Any] = {"benchmark": "controller",
                              **_earlier_parts(out_dir / "controller.json")}
    failed = False

    def note(started: float, load: float) -> dict[str, Any]:
        return {"finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "wall_seconds": time.monotonic() - started, "quick": args.quick,
                "load_average": [load, os.getloadavg()[0]],
                "environment": environment}

    with _workdir(args.keep) as work:
        if args.keep:
            print(f"controller bench: work directory {work}", flush=True)
        if not args.skip_throughput:
            print(f"controller bench: throughput, {args.clients} agents", flush=True)
            started, load = time.monotonic(), os.getloadavg()[0]
            report["throughput"] = throughput(args.clients, seconds, args.warmup, rounds, work)
            report["throughput"]["measured"] = note(started, load)
            failed = failed or bool(report["throughput"]["missing"])
        if not args.skip_replay:
            print(f"controller bench: replay and restart, {events:,} events", flush=True)
            started, load = time.monotonic(), os.getloadavg()[0]
            try:
                report["replay"] = replay_and_restart(
                    events, work, repeats=1 if args.quick else 3,
                    replay_db=Path(args.replay_db).resolve() if args.replay_db else None)
            except (ImportError, AttributeError, RuntimeError, subprocess.SubprocessError) as exc:
                report["replay"] = {"error": f"{type(exc).__name__}: {exc}"}
                failed = True
            report["replay"]["measured"] = note(started, load)
    bench.write_json(out_dir / "controller.json", report)
    (out_dir / "controller.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
