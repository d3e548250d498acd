"""Function mode: ``opensweep.agent(sweep_id, function=train, count=5)``, W&B's ``wandb.agent``.

Each run calls ``function()`` in a fresh process forked for that run (see
:mod:`agent.forkserver`), in its own process group, with the run's environment set, so
``opensweep.init()`` inside it picks up the sweep's values. A crash, a leak, a CUDA context or a
stuck thread in one run cannot reach the next one, and a stop command kills exactly that run.

The call blocks like ``wandb.agent`` and returns when ``count`` runs are done or the sweep has
nothing left. Failures that end the agent raise :class:`AgentError` (its ``exit_code`` is what the
``agent`` command would exit with).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.session import AgentSession

__all__ = ["agent"]


def agent(sweep_id: str, function: Callable[[], Any], count: int | None = None, *,
          controller: str | None = None, token: str | None = None,
          dir: str | Path = "opensweep-runs", grace_period: float = 10.0,
          max_consecutive_failures: int = 5, retry_timeout: float = 60.0,
          verbose: bool = False, quiet: bool = False, tls: bool = False,
          tls_ca: str | None = None) -> int:
    """Run ``function`` for runs of ``sweep_id`` until ``count`` runs are done (or the sweep is).

    ``controller`` defaults to ``$OPENSWEEP_CONTROLLER`` (else 127.0.0.1:50051), ``token`` to
    ``$OPENSWEEP_TOKEN``; ``tls_ca`` (default ``$OPENSWEEP_TLS_CA``) or ``tls=True`` for a
    controller serving TLS. Returns the number of runs executed. Ctrl-C stops the current run
    (SIGTERM to its group, SIGKILL after ``grace_period``), tells the controller, and raises
    KeyboardInterrupt.
    """
    from agent.console import ConsoleReporter
    from agent.forkserver import ForkLauncher
    from agent.session import (
        EXIT_INTERRUPTED,
        AgentError,
        AgentSettings,
        Reporter,
        SilentReporter,
        run_session,
    )
    from controller.client import read_token, resolve_address

    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"count must be a positive int or None, got {count!r}")
    settings = AgentSettings(
        sweep_id=sweep_id, controller=resolve_address(controller),
        token=token if token is not None else read_token(None), count=count,
        run_root=Path(dir), grace_period=grace_period,
        max_consecutive_failures=max_consecutive_failures,
        failure_limit_option="max_consecutive_failures={}", retry_timeout=retry_timeout,
        verbose=verbose, tls=tls, tls_ca=tls_ca)
    logger = logging.getLogger("opensweep.agent")
    handler: logging.Handler | None = None
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("opensweep agent: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if verbose else logging.WARNING)
    reporter: Reporter = SilentReporter() if quiet else ConsoleReporter()
    # The fork server must exist before the event loop and gRPC's threads do.
    launcher = ForkLauncher(function)
    try:
        code, session = _drive(lambda **kw: run_session(settings, launcher=launcher,
                                                        reporter=reporter, uses_command=False,
                                                        **kw))
    finally:
        launcher.close()
        if handler is not None:
            logger.removeHandler(handler)
    if code == EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    if code != 0:
        raise AgentError(f"agent ended with status {code}", code)
    return session.completed if session is not None else 0


def _drive(run: Callable[..., int]) -> tuple[int, AgentSession | None]:
    """Run the agent's event loop to the end from wherever ``opensweep.agent`` was called.

    From a plain script the loop runs here and Ctrl-C reaches the agent through its signal
    handler. Where an event loop is already running in this thread (a Jupyter notebook) a
    second one cannot, so the agent gets a thread of its own, and a KeyboardInterrupt raised
    here (the notebook's "interrupt") is handed to it as a shutdown: the run is stopped and the
    controller told, as with Ctrl-C.
    """
    sessions: list[AgentSession] = []
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        main_thread = threading.current_thread() is threading.main_thread()
        code = run(install_signal_handlers=main_thread, on_loop=sessions.append)
        return code, sessions[0] if sessions else None

    loops: list[asyncio.AbstractEventLoop] = []
    outcome: dict[str, Any] = {}

    def on_loop(session: AgentSession) -> None:
        sessions.append(session)
        loops.append(asyncio.get_running_loop())

    def target() -> None:
        try:
            outcome["code"] = run(install_signal_handlers=False, on_loop=on_loop)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="opensweep-agent", daemon=True)
    thread.start()
    while thread.is_alive():
        try:
            thread.join(0.2)
        except KeyboardInterrupt:
            if sessions and loops:
                loops[0].call_soon_threadsafe(sessions[0].shutdown,
                                              "agent interrupted (KeyboardInterrupt)")
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome["code"]), sessions[0] if sessions else None
