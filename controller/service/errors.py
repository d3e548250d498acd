"""Domain errors -> gRPC status codes, in one place.

Servicer methods are wrapped with :func:`rpc`; they raise the project's own exceptions and
never pick a status code themselves. Anything unexpected is logged with its traceback and
reported as INTERNAL with a one-line description (never the traceback).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from controller.core.errors import ConfigError, OpensweepError
from controller.core.state import EventOrderError, NotFoundError, PreconditionError
from controller.service.controller import InvalidRequestError
from controller.store import StoreError, StoreFailedError

log = logging.getLogger("opensweep.service")

T = TypeVar("T")


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client gets for ``exc``."""
    if isinstance(exc, ConfigError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, InvalidRequestError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, NotFoundError):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, PreconditionError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, StoreFailedError):
        return grpc.StatusCode.UNAVAILABLE, f"the controller cannot write its log: {exc}"
    if isinstance(exc, StoreError | EventOrderError):
        return grpc.StatusCode.INTERNAL, str(exc)
    if isinstance(exc, OpensweepError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


def rpc(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wrap a servicer coroutine ``(self, request, context)`` so domain errors become statuses."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise  # grpc's own control flow (context.abort)
        except OpensweepError as exc:
            code, message = status_for(exc)
            if code == grpc.StatusCode.INTERNAL:
                log.error("%s failed: %s", method.__name__, exc)
            await context.abort(code, message)
            raise
        except Exception as exc:
            log.exception("%s failed", method.__name__)
            code, message = status_for(exc)
            await context.abort(code, message)
            raise

    return wrapper
