"""The server's event loop choice (controller.service.eventloop)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from controller.core.errors import OpensweepError
from controller.service import eventloop


async def _loop_name() -> str:
    await asyncio.sleep(0)
    return eventloop.name_of(asyncio.get_running_loop())


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is a dependency off Windows only")
def test_auto_is_uvloop_where_it_is_a_dependency() -> None:
    assert eventloop.resolve("auto") == "uvloop"
    assert eventloop.run(_loop_name(), "auto") == "uvloop"


def test_asyncio_runs_on_asyncios_own_loop() -> None:
    assert eventloop.resolve("asyncio") == "asyncio"
    assert eventloop.run(_loop_name(), "asyncio") == "asyncio"


def test_an_unknown_loop_is_refused_with_the_choices() -> None:
    with pytest.raises(OpensweepError, match=r"auto, uvloop, asyncio.*'tornado'"):
        eventloop.resolve("tornado")
