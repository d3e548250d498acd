"""``opensweep.sweep(config) -> sweep_id``: create a sweep from Python, like ``wandb.sweep``.

The config is validated here, with the same core the controller uses, before any call: a bad
config raises :class:`~controller.core.errors.ConfigError` listing every problem, and needs no
running controller to be found out. A failed call raises
:class:`~controller.client.ControllerError` (``.code`` is the gRPC status name) with a sentence
that says what to do; neither ever shows the token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import grpc

from controller.client import (
    ControllerError,
    create_sweep_request,
    read_token,
    resolve_address,
    sweep_stub,
    sync_channel,
)
from controller.core.config import load_config
from controller.core.errors import ConfigError, Problem

__all__ = ["ConfigError", "ControllerError", "sweep"]


def sweep(
    config: Mapping[str, Any] | str | os.PathLike[str],
    *,
    controller: str | None = None,
    token: str | None = None,
    seed: int | None = None,
    timeout: float = 30.0,
    entity: str | None = None,
    project: str | None = None,
) -> str:
    """Create a sweep on the controller and return its id (8 lowercase alphanumerics).

    ``config`` is a dict, a path to a YAML/JSON file, or YAML text. ``controller`` is
    ``HOST:PORT`` (default ``$OPENSWEEP_CONTROLLER``, else ``127.0.0.1:50051``); ``token`` the
    controller's shared secret (default ``$OPENSWEEP_TOKEN``); ``seed`` fixes the sweep's
    randomness (default: the controller picks and records one). TLS follows
    ``$OPENSWEEP_TLS_CA``. ``entity`` and ``project`` are accepted so that
    ``wandb.sweep(config, project="p")`` call sites work unchanged; a controller has no
    projects, so they are ignored.
    """
    del entity, project
    parsed = load_config(config)
    request = create_sweep_request(parsed, seed)
    address = resolve_address(controller)
    secret = token.strip() if token is not None else read_token()
    with sync_channel(address, token=secret or None) as channel:
        try:
            reply = sweep_stub(channel).CreateSweep(request, timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                # What the local check could not know (the controller's size limits, say).
                lines = (exc.details() or "invalid config").splitlines()
                raise ConfigError([Problem("", line) for line in lines if line]) from None
            raise ControllerError.from_rpc(exc, address, token_sent=bool(secret)) from None
    return str(reply.sweep.id)
