"""`controller serve`: the gRPC server around a :class:`Controller`.

Public, in-process API (benchmarks and tests use it)::

    server = await start_server(ServeOptions(db="sweeps.db", port=0))
    print(server.address)          # "127.0.0.1:41234"
    ...
    await server.stop()            # graceful: streams end, log flushed, snapshot written

:func:`serve` runs until SIGINT/SIGTERM; :func:`main` is the command line (``controller.cli``
dispatches ``controller serve`` to it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controller.core.errors import OpensweepError
from controller.service.agents import AgentServicer
from controller.service.auth import TokenInterceptor
from controller.service.controller import DEFAULT_HEARTBEAT_INTERVAL, Controller, Settings
from controller.service.sweeps import SweepServicer
from opensweep.v1 import agents_pb2, agents_pb2_grpc, sweeps_pb2, sweeps_pb2_grpc

log = logging.getLogger("opensweep.server")

DEFAULT_PORT = 50051
DEFAULT_DB = "opensweep.db"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 5.0
TOKEN_ENV = "OPENSWEEP_TOKEN"
SERVICE_NAMES = (
    sweeps_pb2.DESCRIPTOR.services_by_name["SweepService"].full_name,
    agents_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
)


class ServeError(OpensweepError):
    """The server cannot start: a bad flag value, an unreadable file, a port in use."""


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    db: str = DEFAULT_DB
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    heartbeat_timeout: float | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    snapshot_every: int = 100_000


class RunningServer:
    """A started controller: ``address`` to connect to, ``controller`` for in-process use."""

    def __init__(self, server: grpc.aio.Server, controller: Controller, address: str,
                 shutdown: asyncio.Event, health_servicer: health.aio.HealthServicer) -> None:
        self.server = server
        self.controller = controller
        self.address = address
        self.shutdown = shutdown
        self._health = health_servicer
        self._stopped = False

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Refuse new calls, end agent streams and followers, flush the log, snapshot, close."""
        if self._stopped:
            return
        self._stopped = True
        self.shutdown.set()
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.controller.close()
        log.info("controller stopped")


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ServeError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


async def start_server(options: ServeOptions) -> RunningServer:
    """Open the log, rebuild the state, bind and start serving."""
    if options.heartbeat_interval <= 0:
        raise ServeError(f"--heartbeat-interval must be > 0 (got {options.heartbeat_interval})")
    if options.heartbeat_timeout is not None and options.heartbeat_timeout <= 0:
        raise ServeError(f"--heartbeat-timeout must be > 0 (got {options.heartbeat_timeout})")
    if (options.heartbeat_timeout is not None
            and options.heartbeat_timeout <= options.heartbeat_interval):
        raise ServeError(f"--heartbeat-timeout ({options.heartbeat_timeout:g} s) must be longer "
                         f"than --heartbeat-interval ({options.heartbeat_interval:g} s), or "
                         "every agent would be lost between two heartbeats")
    if bool(options.tls_cert) != bool(options.tls_key):
        raise ServeError("--tls-cert and --tls-key go together")
    credentials = None
    if options.tls_cert and options.tls_key:
        credentials = grpc.ssl_server_credentials(
            [(_read_file(options.tls_key, "TLS key"), _read_file(options.tls_cert, "TLS cert"))])
    settings = Settings(heartbeat_interval=options.heartbeat_interval,
                        heartbeat_timeout=options.heartbeat_timeout,
                        snapshot_every=options.snapshot_every)
    controller = await Controller.open(options.db, settings)
    try:
        shutdown = asyncio.Event()
        interceptors = [TokenInterceptor(options.token)] if options.token else []
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", options.max_message_bytes),
                ("grpc.max_send_message_length", options.max_message_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
            ],
        )
        sweeps_pb2_grpc.add_SweepServiceServicer_to_server(
            SweepServicer(controller, shutdown), server)
        agents_pb2_grpc.add_AgentServiceServicer_to_server(
            AgentServicer(controller, shutdown), server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        bind = _format_address(options.host, options.port)
        try:
            if credentials is not None:
                port = server.add_secure_port(bind, credentials)
            else:
                port = server.add_insecure_port(bind)
        except RuntimeError as exc:
            raise ServeError(f"cannot listen on {bind}: {exc}") from None
        if not port:
            raise ServeError(f"cannot listen on {bind} (address in use?)")
        await server.start()
        for name in ("", *SERVICE_NAMES):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        controller.start()
    except BaseException:
        await controller.close(snapshot=False)
        raise
    address = _format_address(options.host, port)
    return RunningServer(server, controller, address, shutdown, health_servicer)


async def serve(options: ServeOptions) -> None:
    """Serve until SIGINT or SIGTERM (or until the event log fails), then shut down."""
    running = await start_server(options)
    scheme = "TLS" if options.tls_cert else "plaintext"
    auth = "token required" if options.token else "no token"
    settings = running.controller.settings
    log.info("listening on %s (%s, %s, db %s, heartbeat %gs, timeout %gs)", running.address,
             scheme, auth, os.path.abspath(options.db), settings.heartbeat_interval,
             settings.timeout)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if running.controller.store.failed is not None:
                log.critical("the event log failed (%s); shutting down",
                             running.controller.store.failed)
                break
        else:
            log.info("shutting down (signal received)")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await running.stop()
    if running.controller.store.failed is not None:
        raise ServeError(f"the event log failed: {running.controller.store.failed}")


def read_token(token_file: str | None) -> str | None:
    """The token from ``--token-file`` (stripped), else ``$OPENSWEEP_TOKEN``, else None."""
    if token_file:
        token = _read_file(token_file, "token file").decode("utf-8", errors="replace").strip()
        if not token:
            raise ServeError(f"token file {token_file} is empty")
        return token
    return os.environ.get(TOKEN_ENV, "").strip() or None


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="controller serve")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 picks a free one and logs it)")
    parser.add_argument("--db", default=DEFAULT_DB,
                        help=f"SQLite event log (default ./{DEFAULT_DB}); created if missing")
    parser.add_argument("--token-file", help="require this shared-secret token on every call "
                        f"(default: ${TOKEN_ENV} if set, else no token)")
    parser.add_argument("--tls-cert", help="PEM certificate chain; enables TLS with --tls-key")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--heartbeat-interval", type=float, default=DEFAULT_HEARTBEAT_INTERVAL,
                        help="seconds between agent heartbeats (default %(default)s)")
    parser.add_argument("--heartbeat-timeout", type=float, default=None,
                        help="seconds of silence before an agent is lost (default 3 x interval)")
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
                        help="largest gRPC message accepted or sent (default 16 MiB)")
    parser.add_argument("--snapshot-every", type=int, default=100_000,
                        help="write a state snapshot every N events (default %(default)s)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level")
    return parser


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    if not 0 <= args.port <= 65535:
        raise ServeError(f"--port must be from 0 to 65535 (got {args.port})")
    if args.max_message_bytes < 1024:
        raise ServeError(f"--max-message-bytes must be at least 1024 (got "
                         f"{args.max_message_bytes})")
    if args.snapshot_every < 1:
        raise ServeError(f"--snapshot-every must be >= 1 (got {args.snapshot_every})")
    return ServeOptions(
        host=args.host, port=args.port, db=args.db, token=read_token(args.token_file),
        tls_cert=args.tls_cert, tls_key=args.tls_key,
        heartbeat_interval=args.heartbeat_interval, heartbeat_timeout=args.heartbeat_timeout,
        max_message_bytes=args.max_message_bytes, snapshot_every=args.snapshot_every,
    )


def main(args: argparse.Namespace) -> int:
    """`controller serve` with parsed arguments; returns the exit status."""
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = options_from_args(args)
        asyncio.run(serve(options))
    except OpensweepError as exc:
        print(f"controller: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
