"""Function mode's launcher: a fresh forked process per run of a Python function.

``opensweep.agent(sweep_id, function=train)`` must run ``train`` (often a closure defined in a
notebook or ``__main__``) in a fresh process per run, so a crash or a leak in one run cannot harm
the next. Only ``fork`` carries a closure into a child. Forking from the agent's own process is
unsafe once its event loop and gRPC threads exist (the child would inherit a running loop and the
loop's signal wake-up pipe), so the fork server is forked *first*, while the process is still
quiet, and stays single-threaded: on each request it forks a run process that starts a new
session, points stdout/stderr at the run's log files, sets the run's environment and calls the
function. The agent talks to it over a pair of pipes with one JSON object per line.

Exit statuses: the function returning gives 0, ``sys.exit(n)`` gives n, an exception prints its
traceback to the run's stderr and gives 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.runner import ProcessHandle


def _run_child(function: Callable[[], Any], request: dict[str, Any]) -> None:
    """In the run process: never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (devnull, out, err):
            os.close(fd)
        # sys.stdout may be something other than fd 1 (a notebook's stream, a test's capture):
        # the run's output must land in its log files whatever the parent had.
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        try:
            function()
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException as exc:
            # The user's traceback, without this module's frame on top.
            tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
            traceback.print_exception(type(exc), exc, tb)
            code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code & 0xFF if code >= 0 else 1)


def _serve(function: Callable[[], Any], requests: int, replies: int) -> None:
    """The fork server's loop: spawn on request, report exits, quit when the agent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    children: set[int] = set()
    buffer = b""
    out = os.fdopen(replies, "w", buffering=1)

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in children:
                children.discard(pid)
                out.write(json.dumps({"exit": pid,
                                      "status": os.waitstatus_to_exitcode(status)}) + "\n")

    try:
        while True:
            ready, _, _ = select.select([requests, wake_r], [], [], 1.0)
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
            reap()
            if requests not in ready:
                continue
            chunk = os.read(requests, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    for fd in (requests, replies, wake_r, wake_w):
                        with contextlib.suppress(OSError):
                            os.close(fd)
                    _run_child(function, request)
                children.add(pid)
                out.write(json.dumps({"started": pid, "token": request["token"]}) + "\n")
    except BrokenPipeError:
        pass
    finally:
        # The agent is gone without stopping its runs: take them down rather than orphan them.
        for pid in children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        os._exit(0)


class _ForkedHandle:
    def __init__(self, pid: int, exited: asyncio.Future[int]) -> None:
        self._pid = pid
        self._exited = exited

    @property
    def pid(self) -> int:
        return self._pid

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)


class ForkLauncher:
    """Agent-side end of the fork server. Create it before any event loop or gRPC channel."""

    def __init__(self, function: Callable[[], Any]) -> None:
        if not hasattr(os, "fork"):
            raise OSError("function mode needs os.fork (POSIX); run the program with the agent "
                          "command instead")
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        pid = os.fork()
        if pid == 0:
            os.close(req_w)
            os.close(rep_r)
            try:
                _serve(function, req_r, rep_w)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(rep_w)
        self.server_pid = pid
        self._requests = req_w
        self._replies = rep_r
        self._buffer = b""
        self._next_token = 0
        self._starting: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._early_exits: dict[int, int] = {}
        self._reader_loop: asyncio.AbstractEventLoop | None = None

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._replies, 65536)
        except BlockingIOError:
            return
        if not chunk:
            if self._reader_loop is not None:
                self._reader_loop.remove_reader(self._replies)
                self._reader_loop = None
            error = OSError("the function-mode fork server exited")
            for fut in [*self._starting.values(), *self._exits.values()]:
                if not fut.done():
                    fut.set_exception(error)
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            message = json.loads(line)
            if "started" in message:
                start_fut = self._starting.pop(message["token"], None)
                if start_fut is not None and not start_fut.done():
                    start_fut.set_result(message["started"])
            elif "exit" in message:
                pid, status = message["exit"], message["status"]
                exit_fut = self._exits.get(pid)
                if exit_fut is None:
                    self._early_exits[pid] = status
                elif not exit_fut.done():
                    exit_fut.set_result(status)

    async def launch(self, argv: Sequence[str] | None, env: Mapping[str, str], cwd: str,
                     stdout_path: str, stderr_path: str) -> ProcessHandle:
        loop = asyncio.get_running_loop()
        if self._reader_loop is not loop:
            # One reader per event loop (function mode uses one loop; tests may use several).
            os.set_blocking(self._replies, False)
            loop.add_reader(self._replies, self._on_readable)
            self._reader_loop = loop
        token = self._next_token
        self._next_token += 1
        started: asyncio.Future[int] = loop.create_future()
        self._starting[token] = started
        request = {"token": token, "env": dict(env), "cwd": cwd, "stdout": stdout_path,
                   "stderr": stderr_path}
        try:
            os.write(self._requests, (json.dumps(request) + "\n").encode())
        except BrokenPipeError as exc:
            raise OSError("the function-mode fork server exited") from exc
        pid = await started
        exited: asyncio.Future[int] = loop.create_future()
        if pid in self._early_exits:
            exited.set_result(self._early_exits.pop(pid))
        self._exits[pid] = exited
        return _ForkedHandle(pid, exited)

    def close(self) -> None:
        """Tell the fork server to quit and reap it."""
        if self._reader_loop is not None and not self._reader_loop.is_closed():
            self._reader_loop.remove_reader(self._replies)
        self._reader_loop = None
        for fd in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.server_pid, 0)
