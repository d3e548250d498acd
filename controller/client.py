"""Client-side helpers shared by the `sweep` CLI, the agent and :func:`opensweep.sweep`.

One place decides how a client finds the controller (``--controller`` or ``OPENSWEEP_CONTROLLER``
or ``127.0.0.1:50051``), where its token comes from (``--token-file`` or ``OPENSWEEP_TOKEN``),
how the token travels (metadata ``authorization: Bearer <token>`` on every call) and how a
failed call is explained to a person (one line, no traceback).

TLS: pass ``tls_ca`` (a PEM file of the CA that signed the controller's certificate) or set
``OPENSWEEP_TLS_CA``; ``tls=True`` without a CA file uses the system's roots.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from controller.core.errors import OpensweepError
from opensweep.v1 import agents_pb2_grpc, sweeps_pb2_grpc
from opensweep.v1.sweeps_pb2 import CreateSweepRequest

if TYPE_CHECKING:  # the config core pulls in numpy and scipy; clients that only call skip it
    from controller.core.config import SweepConfig

DEFAULT_CONTROLLER = "127.0.0.1:50051"
CONTROLLER_ENV = "OPENSWEEP_CONTROLLER"
TOKEN_ENV = "OPENSWEEP_TOKEN"
TLS_CA_ENV = "OPENSWEEP_TLS_CA"

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Clients accept large replies (a long ListRuns); the controller enforces its own limit."""


class ClientSetupError(OpensweepError):
    """A client cannot be set up: a malformed address or an unreadable token/CA file."""


def resolve_address(address: str | None = None) -> str:
    """The controller address to use: the explicit one, else ``$OPENSWEEP_CONTROLLER``, else
    ``127.0.0.1:50051``. Validated: ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6)."""
    chosen = address or os.environ.get(CONTROLLER_ENV) or DEFAULT_CONTROLLER
    parse_address(chosen)
    return chosen


def parse_address(address: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (or ``[v6]:PORT``); ClientSetupError with a clear message otherwise."""
    text = address.strip()
    for prefix in ("grpc://", "dns:///"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ClientSetupError(f"controller address {address!r} is not [HOST]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ClientSetupError(f"controller address {address!r} is not HOST:PORT")
    if not host:
        raise ClientSetupError(f"controller address {address!r} has no host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ClientSetupError(
            f"controller address {address!r}: port must be a number from 1 to 65535"
        )
    return host, int(port_text)


def read_token(token_file: str | os.PathLike[str] | None = None) -> str | None:
    """The shared-secret token: the file's content (stripped) or ``$OPENSWEEP_TOKEN``; None when
    neither is set. The token is never logged or echoed."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ClientSetupError(f"cannot read token file {token_file}: {exc.strerror}") from exc
        if not token:
            raise ClientSetupError(f"token file {token_file} is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def _metadata_with_token(metadata: Any, token: str) -> list[tuple[str, str | bytes]]:
    items = list(metadata or ())
    items.append(("authorization", f"Bearer {token}"))
    return items


class _AioTokenInterceptor:
    """Adds ``authorization: Bearer <token>`` to every call of an aio channel.

    grpc.aio files each interceptor under the FIRST call shape it is an instance of (an
    if/elif chain), so one class deriving from all four shapes would only ever see unary-unary
    calls and streams would go out without the token. :func:`_aio_token_interceptors` makes
    one instance per shape instead.
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=grpc.aio.Metadata(*_metadata_with_token(details.metadata, self._token)),
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)

    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request_iterator)

    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request_iterator)


def _aio_token_interceptors(token: str) -> list[Any]:
    shapes = (grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor,
              grpc.aio.StreamUnaryClientInterceptor, grpc.aio.StreamStreamClientInterceptor)
    return [type(f"_AioToken{shape.__name__}", (_AioTokenInterceptor, shape), {})(token)
            for shape in shapes]


class _SyncTokenInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call of a blocking channel."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: Any) -> Any:
        return _SyncCallDetails(
            details.method,
            details.timeout,
            _metadata_with_token(details.metadata, self._token),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request_iterator)


class _SyncCallDetails(grpc.ClientCallDetails):
    def __init__(
        self,
        method: str,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]],
        credentials: grpc.CallCredentials | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | None,
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def _credentials(
    tls: bool, tls_ca: str | os.PathLike[str] | None
) -> grpc.ChannelCredentials | None:
    ca_path = tls_ca or os.environ.get(TLS_CA_ENV) or None
    if ca_path:
        try:
            roots = Path(ca_path).read_bytes()
        except OSError as exc:
            raise ClientSetupError(f"cannot read TLS CA file {ca_path}: {exc.strerror}") from exc
        return grpc.ssl_channel_credentials(root_certificates=roots)
    if tls:
        return grpc.ssl_channel_credentials()
    return None


def _options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


def aio_channel(
    address: str | None = None,
    *,
    token: str | None = None,
    tls: bool = False,
    tls_ca: str | os.PathLike[str] | None = None,
) -> grpc.aio.Channel:
    """An asyncio channel to the controller, adding the token to every call when given.

    Nothing is contacted until the first call; a controller that is down shows up as
    ``UNAVAILABLE`` on that call (see :func:`describe_rpc_error`).
    """
    target = resolve_address(address)
    interceptors = _aio_token_interceptors(token) if token else None
    creds = _credentials(tls, tls_ca)
    if creds is not None:
        return grpc.aio.secure_channel(target, creds, options=_options(), interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=_options(), interceptors=interceptors)


def sync_channel(
    address: str | None = None,
    *,
    token: str | None = None,
    tls: bool = False,
    tls_ca: str | os.PathLike[str] | None = None,
) -> grpc.Channel:
    """A blocking channel to the controller (same rules as :func:`aio_channel`)."""
    target = resolve_address(address)
    creds = _credentials(tls, tls_ca)
    if creds is not None:
        channel = grpc.secure_channel(target, creds, options=_options())
    else:
        channel = grpc.insecure_channel(target, options=_options())
    if token:
        return grpc.intercept_channel(channel, _SyncTokenInterceptor(token))
    return channel


def sweep_stub(channel: grpc.Channel | grpc.aio.Channel) -> sweeps_pb2_grpc.SweepServiceStub:
    return sweeps_pb2_grpc.SweepServiceStub(channel)


def agent_stub(channel: grpc.Channel | grpc.aio.Channel) -> agents_pb2_grpc.AgentServiceStub:
    return agents_pb2_grpc.AgentServiceStub(channel)


def _unreachable_reason(details: str) -> str:
    """gRPC's connect failure text is long and repetitive; keep the part a person acts on."""
    lowered = details.lower()
    for needle, short in (
        ("connection refused", "connection refused"),
        ("socket closed", "connection lost"),
        ("connection reset", "connection lost"),
        ("name resolution", "host name not found"),
        ("dns resolution failed", "host name not found"),
        ("deadline exceeded", "timed out"),
        ("timeout", "timed out"),
        ("ssl", "TLS handshake failed"),
        ("handshake", "TLS handshake failed"),
    ):
        if needle in lowered:
            return short
    return details or "unavailable"


def _unreachable_hint(reason: str) -> str:
    if reason == "TLS handshake failed":
        return ("is the controller's certificate signed by the CA given with --tls-ca "
                "(or OPENSWEEP_TLS_CA), and does it name this host?")
    if reason == "connection lost":
        return ("did `controller serve` stop? If it serves TLS, pass its CA with --tls-ca "
                "(or OPENSWEEP_TLS_CA).")
    return ("is `controller serve` running there? Set --controller or "
            "OPENSWEEP_CONTROLLER.")


def describe_rpc_error(
    exc: grpc.RpcError, address: str | None = None, *, token_sent: bool | None = None
) -> str:
    """One line for a person: what failed and what to do, never a traceback (nor the token).

    ``token_sent`` (when the caller knows) tells a missing token from a refused one."""
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else None) or ""
    where = f" at {address}" if address else ""
    if code == grpc.StatusCode.UNAVAILABLE:
        reason = _unreachable_reason(details)
        return f"cannot reach the controller{where} ({reason}); {_unreachable_hint(reason)}"
    if code == grpc.StatusCode.UNAUTHENTICATED and token_sent is False:
        return (
            f"the controller{where} requires a token and none was given "
            "(set OPENSWEEP_TOKEN or --token-file to the controller's token)"
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        # The server's own text only restates the protocol; what a person needs is which token.
        return (
            f"the controller{where} refused the token "
            "(set OPENSWEEP_TOKEN or --token-file to the controller's token)"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"the controller{where} did not answer in time"
    if code is None:
        return str(exc)
    return details or code.name.lower()


class ControllerError(OpensweepError):
    """A call to the controller failed; ``code`` is the gRPC status code's name
    (``"UNAVAILABLE"``, ``"NOT_FOUND"``, ...) so callers can branch without importing grpc, and
    the message is :func:`describe_rpc_error`'s sentence."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def from_rpc(
        cls, exc: grpc.RpcError, address: str | None = None, *, token_sent: bool | None = None
    ) -> ControllerError:
        code = exc.code() if hasattr(exc, "code") else None
        name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
        return cls(describe_rpc_error(exc, address, token_sent=token_sent), name)


def create_sweep_request(config: SweepConfig, seed: int | None = None) -> CreateSweepRequest:
    """The CreateSweep request for a config already validated locally.

    The config travels as JSON of ``config.raw`` (numbers already parsed the core's way), so
    the controller's parse sees exactly what the local one accepted, whatever YAML dialect the
    file used. ``seed`` 0 or None lets the controller choose (and record) one.
    """
    if seed is not None and not 0 <= seed < 2**64:
        raise ClientSetupError(f"seed must be from 0 to 2**64-1 (got {seed})")
    return CreateSweepRequest(config=json.dumps(config.raw), seed=seed or 0)
