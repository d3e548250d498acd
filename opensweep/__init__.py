"""opensweep: self-hosted sweeps for W&B-style sweep configs.

This module stays light on purpose: the controller and the agent both import
``opensweep.v1`` (the generated protocol code), and neither should pay for the
user-facing API's imports. The public functions are loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["agent", "init", "sweep"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "init":
        from opensweep.run import init

        return init
    if name == "agent":
        from opensweep.function_agent import agent

        return agent
    if name == "sweep":
        from opensweep.client import sweep

        return sweep
    raise AttributeError(f"module 'opensweep' has no attribute {name!r}")
