"""The watchdog that stops a dead agent's runs (real processes, real signals)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from agent.runner import group_alive
from agent.watchdog import Watchdog


def _sleeper(ignore_sigterm: bool = False) -> subprocess.Popen[bytes]:
    code = "import signal, time\n"
    if ignore_sigterm:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "time.sleep(120)\n"
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def _wait_gone(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while group_alive(proc.pid):
        assert time.monotonic() < deadline, "group still alive"
        time.sleep(0.02)


def test_the_pipe_closing_with_runs_registered_stops_them() -> None:
    watchdog = Watchdog(grace=0.3)
    polite, stubborn = _sleeper(), _sleeper(ignore_sigterm=True)
    try:
        watchdog.add(polite.pid)
        watchdog.add(stubborn.pid)
        watchdog.close()  # what the agent's death looks like from the other end
        _wait_gone(polite)
        _wait_gone(stubborn)
        assert polite.returncode == -signal.SIGTERM
        assert stubborn.returncode == -signal.SIGKILL
    finally:
        for proc in (polite, stubborn):
            proc.kill()
            proc.wait()


def test_runs_that_ended_are_left_alone() -> None:
    watchdog = Watchdog(grace=0.3)
    survivor = _sleeper()
    try:
        watchdog.add(survivor.pid)
        watchdog.remove(survivor.pid)
        watchdog.close()
        assert survivor.poll() is None
    finally:
        survivor.kill()
        survivor.wait()
