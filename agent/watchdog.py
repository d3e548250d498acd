"""A tiny process that takes a dead agent's runs down with it.

Runs live in their own sessions (so Ctrl-C at the agent's terminal reaches only the agent, which
then stops them properly). The price: when the agent dies without a chance to clean up (SIGKILL,
the OOM killer, a crash of the interpreter), nothing would stop its runs, and a training job
would hold its GPU until someone noticed. So the agent starts one watchdog, in a session of its
own, and tells it over a pipe which process groups are running (``+PGID``) and which are over
(``-PGID``). The pipe reaching end-of-file while groups are still registered means the agent is
gone: the watchdog sends them SIGTERM, waits the grace period, sends SIGKILL, and exits. An agent
that leaves normally has no registered group left, and the watchdog simply exits.

Run as ``python -m agent.watchdog GRACE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time

from agent.runner import group_alive, signal_group


def take_down(pgids: set[int], grace: float) -> None:
    """SIGTERM every group, SIGKILL whatever is left after ``grace`` seconds."""
    for pgid in pgids:
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        pgids = {p for p in pgids if group_alive(p)}
        if not pgids:
            return
        time.sleep(0.05)
    for pgid in pgids:
        signal_group(pgid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    grace = float(args[0]) if args else 10.0
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        text = line.strip()
        if text[:1] == "+" and text[1:].isdigit():
            groups.add(int(text[1:]))
        elif text[:1] == "-" and text[1:].isdigit():
            groups.discard(int(text[1:]))
    if groups:
        print(f"opensweep agent watchdog: the agent is gone; stopping its runs' process groups "
              f"{sorted(groups)}", file=sys.stderr, flush=True)
        take_down(groups, grace)
    return 0


class Watchdog:
    """The agent's end: start it once, then ``add``/``remove`` run process groups."""

    def __init__(self, grace: float) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agent.watchdog", repr(grace)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True,
            text=True, bufsize=1)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _write(self, line: str) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()

    def add(self, pgid: int) -> None:
        self._write(f"+{pgid}")

    def remove(self, pgid: int) -> None:
        self._write(f"-{pgid}")

    def close(self) -> None:
        """The agent leaves normally: end the pipe and reap the watchdog."""
        if self._proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ValueError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    sys.exit(main())
