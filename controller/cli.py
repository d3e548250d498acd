"""Command lines: `controller serve` and the `sweep` client."""

from __future__ import annotations

import argparse
import os

#: BLAS thread pools only slow the controller's small GP fits (bayes), and badly so on cores
#: shared with training jobs (5x measured on 2 busy cores). Read when numpy first loads.
_SINGLE_THREADED_BLAS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def main(argv: list[str] | None = None) -> int:
    """`controller serve ...` (the serve code lives in controller.service.server)."""
    for name in _SINGLE_THREADED_BLAS:
        os.environ.setdefault(name, "1")
    from controller.service import server

    parser = argparse.ArgumentParser(prog="controller", description="opensweep controller")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="run the controller (gRPC) on an SQLite event log",
        description="Run the controller. Logs go to stderr; SIGINT/SIGTERM shut down cleanly.")
    server.build_parser(serve)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return server.main(args)
    parser.print_help()
    return 0


def sweep_main(argv: list[str] | None = None) -> int:
    import sys

    # gRPC's C core logs TLS handshake failures to stderr itself; the client explains them.
    # The setting is read when grpc loads, so it only matters (and is only made) before that.
    if "grpc" not in sys.modules:
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from controller import sweep_cli

    parser = argparse.ArgumentParser(
        prog="sweep", description="opensweep sweep client",
        epilog="Exit codes: 0 ok, 1 the controller refused (unknown sweep, wrong state, token "
        "refused), 2 invalid input, 3 controller unreachable. See docs/cli.md.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    validate = commands.add_parser(
        "validate", help="check a sweep config offline (exit 0 valid, 2 invalid)")
    validate.add_argument("config", metavar="CONFIG.yaml", help="the sweep config ('-': stdin)")
    validate.add_argument("--json", action="store_true", help="print the result as JSON")
    validate.add_argument("--lenient", action="store_true",
                          help="unknown keys are warnings, not errors (as W&B's server does)")
    sweep_cli.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "validate":
        from controller.validate import run as run_validate

        return run_validate(args.config, as_json=args.json, strict=not args.lenient)
    if args.command is not None:
        return sweep_cli.run(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
