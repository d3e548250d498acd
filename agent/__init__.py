"""The agent: runs a sweep's programs on this host (see docs/agent.md).

Importing :mod:`opensweep` first settles gRPC's fork handling before any agent module imports
grpc: function mode forks processes that must not run gRPC's fork handlers.
"""

import opensweep  # noqa: F401
