"""`agent`: runs a sweep's programs on this host until the sweep (or ``--count``) is done.

``agent --sweep ID`` and ``agent ID`` (W&B's form) are the same. Run lines go to stdout, logs
to stderr; every way of failing ends with one clear line and an exit status from
:mod:`agent.session` (documented in docs/agent.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from agent.console import ConsoleReporter
from agent.session import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    AgentError,
    AgentSession,
    AgentSettings,
    Reporter,
    SilentReporter,
    run_session,
)
from controller.client import ClientSetupError, read_token, resolve_address

log = logging.getLogger("opensweep.agent")

EXIT_USAGE = 2


class _ProgressAwareHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Erases the live progress line before a log line is written over it."""

    def __init__(self, reporter: Reporter | None) -> None:
        super().__init__(sys.stderr)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(self.reporter, ConsoleReporter):
            self.reporter.clear()
        super().emit(record)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent",
        description="Run a sweep's programs on this host: ask the controller for runs, execute "
                    "each one in its own process group, stream its metrics, stop it when told.",
        epilog="Exit status: 0 done (count reached or sweep over), 1 error, 2 usage, "
               "3 too many consecutive failed runs, 4 controller unreachable, 5 token refused, "
               "6 no such sweep, 130 interrupted.")
    parser.add_argument("sweep_positional", nargs="?", metavar="SWEEP_ID",
                        help="the sweep to work for (same as --sweep)")
    parser.add_argument("--sweep", dest="sweep", metavar="ID", help="the sweep to work for")
    parser.add_argument("--count", type=_count, metavar="N",
                        help="leave after N runs (default: until the sweep has nothing left)")
    parser.add_argument("--controller", metavar="HOST:PORT",
                        help="controller address (default: $OPENSWEEP_CONTROLLER, else "
                             "127.0.0.1:50051)")
    parser.add_argument("--token-file", metavar="PATH",
                        help="file holding the controller's token (default: $OPENSWEEP_TOKEN)")
    parser.add_argument("--tls-ca", metavar="PEM",
                        help="CA certificate of a TLS controller (default: $OPENSWEEP_TLS_CA)")
    parser.add_argument("--tls", action="store_true",
                        help="the controller serves TLS with a certificate the system trusts")
    parser.add_argument("--dir", type=Path, default=Path("opensweep-runs"), metavar="DIR",
                        help="where each run's logs, config and metrics go, one directory per "
                             "run (default: ./opensweep-runs)")
    parser.add_argument("--grace-period", type=_positive_float, default=10.0, metavar="SECONDS",
                        help="after SIGTERM, how long a stopped run's process group has before "
                             "SIGKILL (default: 10)")
    parser.add_argument("--max-consecutive-failures", type=_non_negative_int, default=5,
                        metavar="N", help="leave after N failed runs in a row, showing the "
                                          "last one's stderr (default: 5; 0: never)")
    parser.add_argument("--retry-timeout", type=_positive_float, default=60.0, metavar="SECONDS",
                        help="how long to keep retrying an unreachable controller while no run "
                             "is going (default: 60)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("-q", "--quiet", action="store_true",
                        help="no run lines or progress line: log lines only")
    output.add_argument("-v", "--verbose", action="store_true",
                        help="also echo each run's stdout/stderr and log what the agent does")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sweep and args.sweep_positional and args.sweep != args.sweep_positional:
        parser.error(f"two different sweeps given: {args.sweep_positional!r} and "
                     f"--sweep {args.sweep!r}")
    sweep_id = args.sweep or args.sweep_positional
    if not sweep_id:
        parser.error("which sweep? give its id: agent SWEEP_ID (or --sweep SWEEP_ID)")

    reporter: Reporter = SilentReporter() if args.quiet else ConsoleReporter()
    handler = _ProgressAwareHandler(reporter)
    handler.setFormatter(logging.Formatter("agent: %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO if (args.verbose or args.quiet) else logging.WARNING)

    try:
        settings = AgentSettings(
            sweep_id=sweep_id, controller=resolve_address(args.controller),
            token=read_token(args.token_file), count=args.count, run_root=args.dir,
            grace_period=args.grace_period,
            max_consecutive_failures=args.max_consecutive_failures,
            retry_timeout=args.retry_timeout, verbose=args.verbose, tls_ca=args.tls_ca,
            tls=args.tls)
        sessions: list[AgentSession] = []
        code = run_session(settings, reporter=reporter, on_loop=sessions.append)
    except ClientSetupError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AgentError as exc:
        reporter.close()
        print(f"agent: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        reporter.close()
        print("agent: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        reporter.close()
        print(f"agent: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        log.removeHandler(handler)
    session = sessions[0]
    if not args.quiet:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(session.outcomes.items()))
        print(f"agent: done after {session.completed} run(s){f' ({counts})' if counts else ''}; "
              f"{session.leave_reason}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
