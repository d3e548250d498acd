"""One run's process group: start the program, watch it, stop it, say how it ended.

The program is started in its own session (hence its own process group, whose id is the
program's pid), so a stop reaches every process it started: SIGTERM to the group, SIGKILL to the
group after the grace period. W&B signals only the child, which leaves grandchildren running.

A run is only over when its group is empty: a program that exits but leaves processes behind in
its group has them terminated the same way, so nothing a run started outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.metrics import POLL_INTERVAL_SECONDS, MetricsTail, Record

log = logging.getLogger("opensweep.agent")

STDOUT_NAME = "stdout.log"
STDERR_NAME = "stderr.log"
METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"

#: How long to wait for a SIGKILLed group to disappear before giving up on it.
KILL_WAIT_SECONDS = 5.0


class Outcome(enum.Enum):
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class RunResult:
    """How a run ended: what the agent reports in RunEnded."""

    outcome: Outcome
    exit_code: int | None
    reason: str
    started_at: float
    ended_at: float

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at


class ProcessHandle(Protocol):
    """A started program: the leader of its own process group."""

    @property
    def pid(self) -> int: ...

    async def wait(self) -> int:
        """The exit status: >= 0 when it exited, minus the signal number when a signal ended it."""
        ...


class Launcher(Protocol):
    """Starts a run's program in a new session with stdio redirected to the given files."""

    async def launch(self, argv: Sequence[str] | None, env: Mapping[str, str], cwd: str,
                     stdout_path: str, stderr_path: str) -> ProcessHandle: ...


class _AsyncioHandle:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def wait(self) -> int:
        return await self._proc.wait()


class ExecLauncher:
    """Runs an argv list directly: no shell ever sees a parameter value."""

    async def launch(self, argv: Sequence[str] | None, env: Mapping[str, str], cwd: str,
                     stdout_path: str, stderr_path: str) -> ProcessHandle:
        if not argv:
            raise OSError("the command is empty")
        with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err,
                env=dict(env), cwd=cwd, start_new_session=True,
            )
        return _AsyncioHandle(proc)


def _group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) pids in the group from /proc, or None where /proc is unavailable."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies awaiting a reaper do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    members = _group_members(pgid)
    return True if members is None else bool(members)


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def describe_exit(code: int) -> str:
    if code >= 0:
        return f"exit status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"killed by {name}"


def stderr_tail(run_dir: str | os.PathLike[str], lines: int = 20, max_bytes: int = 8192) -> str:
    """The last lines of a run's stderr, for messages about failing programs."""
    path = Path(run_dir) / STDERR_NAME
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


class _Echo:
    """Copies new output of a run's log file to the agent's stderr (``--verbose``)."""

    def __init__(self, path: Path, prefix: str) -> None:
        self.path = path
        self.prefix = prefix
        self.offset = 0
        self.partial = b""

    def pump(self, final: bool = False) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(1 << 20)
        except OSError:
            return
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        if final and self.partial:
            lines.append(self.partial)
            self.partial = b""
        for line in lines:
            sys.stderr.write(f"{self.prefix}{line.decode('utf-8', errors='replace')}\n")
        if lines:
            sys.stderr.flush()


class RunProcess:
    """Executes one run and reports its metric records as they appear.

    ``on_records`` is called (from the event loop) with each batch of new records; the final
    batch is delivered before :meth:`execute` returns, so a caller can send the run's last metrics
    before its outcome.
    """

    def __init__(self, *, run_id: str, run_dir: Path, argv: Sequence[str] | None,
                 env: Mapping[str, str], launcher: Launcher, grace_period: float,
                 on_records: Callable[[list[Record]], None],
                 on_started: Callable[[int], None] | None = None,
                 echo: bool = False, cwd: str | None = None) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.argv = list(argv) if argv is not None else None
        self.env = dict(env)
        self.launcher = launcher
        self.grace_period = grace_period
        self.on_records = on_records
        self.on_started = on_started
        self.cwd = cwd or os.getcwd()
        self.pid: int | None = None
        self.stop_reason: str | None = None
        self._stop_event = asyncio.Event()
        self._echo = [
            _Echo(run_dir / STDOUT_NAME, f"[{run_id}] "),
            _Echo(run_dir / STDERR_NAME, f"[{run_id} stderr] "),
        ] if echo else []
        self.tail = MetricsTail(run_dir / METRICS_NAME, self._warn)

    def _warn(self, message: str) -> None:
        log.warning("run %s: %s", self.run_id, message)

    def request_stop(self, reason: str) -> None:
        """Ask the run to stop: SIGTERM now, SIGKILL after the grace period. Idempotent."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop_event.set()

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    def kill_now(self) -> None:
        """Skip the rest of the grace period (a second Ctrl-C)."""
        if self.pid is not None:
            signal_group(self.pid, signal.SIGKILL)

    def _pump(self, final: bool = False) -> None:
        records = self.tail.close() if final else self.tail.poll()
        if records:
            self.on_records(records)
        for echo in self._echo:
            echo.pump(final)

    async def execute(self) -> RunResult:
        started_at = time.time()
        stdout_path = str(self.run_dir / STDOUT_NAME)
        stderr_path = str(self.run_dir / STDERR_NAME)
        if self.stopping:
            return RunResult(Outcome.STOPPED, None, f"stopped before it started: "
                             f"{self.stop_reason}", started_at, time.time())
        try:
            handle = await self.launcher.launch(self.argv, self.env, self.cwd, stdout_path,
                                                stderr_path)
        except OSError as exc:
            message = f"could not start {self.argv[0] if self.argv else 'the program'}: {exc}"
            with open(stderr_path, "a", encoding="utf-8") as err:
                err.write(f"opensweep agent: {message}\n")
            return RunResult(Outcome.FAILED, None, message, started_at, time.time())
        self.pid = handle.pid
        if self.on_started is not None:
            self.on_started(handle.pid)
        exit_code = await self._watch(handle)
        self._pump(final=True)
        ended_at = time.time()
        if self.stop_reason is not None:
            return RunResult(Outcome.STOPPED, exit_code, f"stopped: {self.stop_reason}",
                             started_at, ended_at)
        if exit_code == 0:
            return RunResult(Outcome.FINISHED, 0, "exit status 0", started_at, ended_at)
        return RunResult(Outcome.FAILED, exit_code, describe_exit(exit_code), started_at,
                         ended_at)

    async def _watch(self, handle: ProcessHandle) -> int:
        pgid = handle.pid
        waiter = asyncio.ensure_future(handle.wait())
        stop_waiter = asyncio.ensure_future(self._stop_event.wait())
        kill_at: float | None = None
        try:
            while not waiter.done():
                await asyncio.wait({waiter, stop_waiter}, timeout=POLL_INTERVAL_SECONDS,
                                   return_when=asyncio.FIRST_COMPLETED)
                if stop_waiter.done() and kill_at is None:
                    log.info("run %s: stopping (%s)", self.run_id, self.stop_reason)
                    signal_group(pgid, signal.SIGTERM)
                    kill_at = time.monotonic() + self.grace_period
                if kill_at is not None and time.monotonic() >= kill_at:
                    log.warning("run %s: still running %.0f s after SIGTERM; sending SIGKILL",
                                self.run_id, self.grace_period)
                    signal_group(pgid, signal.SIGKILL)
                    kill_at = float("inf")
                self._pump()
            exit_code = waiter.result()
        finally:
            stop_waiter.cancel()
            if not waiter.done():
                # Cancelled from outside (the agent is going away abruptly): take the group down.
                signal_group(pgid, signal.SIGKILL)
                waiter.cancel()
        await self._clear_group(pgid, kill_at)
        return exit_code

    async def _clear_group(self, pgid: int, kill_at: float | None) -> None:
        """Terminate whatever the program left in its group once the leader has exited."""
        if not group_alive(pgid):
            return
        if kill_at is None:
            log.warning("run %s: the program exited but left processes in its group; "
                        "terminating them", self.run_id)
            signal_group(pgid, signal.SIGTERM)
            kill_at = time.monotonic() + self.grace_period
        killed = kill_at == float("inf")
        give_up = (time.monotonic() if killed else kill_at) + KILL_WAIT_SECONDS
        while group_alive(pgid):
            now = time.monotonic()
            if not killed and now >= kill_at:
                signal_group(pgid, signal.SIGKILL)
                killed = True
                give_up = now + KILL_WAIT_SECONDS
            if now >= give_up:
                log.error("run %s: processes of group %d survive SIGKILL", self.run_id, pgid)
                return
            self._pump()
            await asyncio.sleep(POLL_INTERVAL_SECONDS / 2)
