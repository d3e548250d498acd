"""Which asyncio event loop a server process runs on.

uvloop (libuv) is the default where it is installed (it is a dependency on Linux and macOS):
the controller spends about a third of its CPU per suggestion in the event loop itself
(futures, callbacks, the selector), and uvloop does that work in C. Measured with the
controller benchmark, both servers on the same loop: the controller's CPU per suggestion cycle
falls by a fifth, and its throughput as a fraction of a bare grpcio server's rises from
0.55-0.6 to 0.63-0.89 on the same loaded machine (docs/controller.md). grpc's asyncio stack
runs on any asyncio loop. ``asyncio`` stays selectable, and is what runs where uvloop is not
installed (Windows).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

from controller.core.errors import OpensweepError

T = TypeVar("T")

CHOICES = ("auto", "uvloop", "asyncio")


def resolve(choice: str) -> str:
    """The loop ``choice`` means here: ``auto`` is uvloop when it is installed."""
    if choice not in CHOICES:
        raise OpensweepError(f"event loop must be one of {', '.join(CHOICES)} (got {choice!r})")
    if choice == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if choice == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise OpensweepError("--event-loop uvloop: uvloop is not installed "
                             "(pip install uvloop, or use --event-loop asyncio)")
    return choice


def name_of(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: which implementation ``loop`` is (for the start-up log)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """``asyncio.run(main)`` on the loop ``choice`` resolves to."""
    if resolve(choice) == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)
