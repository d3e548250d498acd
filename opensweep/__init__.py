"""opensweep: self-hosted sweeps for W&B-style sweep configs.

This module stays light on purpose: the controller and the agent both import
``opensweep.v1`` (the generated protocol code), and neither should pay for the
user-facing API's imports. The public functions are loaded on first use.
"""

from __future__ import annotations

import os
from typing import Any

# Function mode (opensweep.agent) forks the user's process, often after opensweep.sweep() has
# used gRPC in it. gRPC's C core, with its fork support on, runs handlers around every fork that
# can deadlock or abort a forked child that forks again (the fork server starting each run), and
# the agent's forked processes never use gRPC, so they need none of it. The setting is read when
# grpc is first imported, so it is made here, before any opensweep module imports grpc; an
# explicit GRPC_ENABLE_FORK_SUPPORT in the environment wins.
GRPC_FORK_ENV = "GRPC_ENABLE_FORK_SUPPORT"
#: True when the setting is opensweep's own: the agent then keeps it out of runs' environments.
grpc_fork_setting_is_ours = GRPC_FORK_ENV not in os.environ
os.environ.setdefault(GRPC_FORK_ENV, "false")

__all__ = ["agent", "finish", "init", "log", "sweep"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("init", "log", "finish"):
        from opensweep import run

        return getattr(run, name)
    if name == "agent":
        from opensweep.function_agent import agent

        return agent
    if name == "sweep":
        from opensweep.client import sweep

        return sweep
    raise AttributeError(f"module 'opensweep' has no attribute {name!r}")
