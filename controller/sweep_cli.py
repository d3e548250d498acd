"""The `sweep` client commands that talk to a controller: create, list, show, runs, pause,
resume, stop, cancel and events.

Every command is one or two blocking gRPC calls and a rendering. The rendering is kept apart
from the calls (``*_json`` builds the documented JSON form of a proto message, ``render_*``
turns that into aligned text) so it can be tested without a controller, and so the human and
the ``--json`` output can never disagree about a value.

Failures become one line on stderr and an exit code (see ``EXIT_*``), never a traceback: a
person at a terminal learns what went wrong and what to do, a script learns it from the code.
docs/cli.md documents the output formats; change them only additively.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import grpc

from controller.client import (
    ClientSetupError,
    create_sweep_request,
    describe_rpc_error,
    read_token,
    resolve_address,
    sweep_stub,
    sync_channel,
)
from controller.core.errors import ConfigError
from controller.display import format_duration
from opensweep.v1 import sweeps_pb2

EXIT_OK = 0
EXIT_FAILED = 1
"""The controller refused or failed the call: unknown sweep, wrong state, token refused."""
EXIT_INVALID = 2
"""Bad input caught before or by the controller: invalid config, bad flags, INVALID_ARGUMENT."""
EXIT_UNREACHABLE = 3
"""No controller answered at the address (or not in time)."""
EXIT_INTERRUPTED = 130

DEFAULT_TIMEOUT = 30.0

SWEEP_STATES = {
    sweeps_pb2.SWEEP_STATE_RUNNING: "running",
    sweeps_pb2.SWEEP_STATE_PAUSED: "paused",
    sweeps_pb2.SWEEP_STATE_FINISHED: "finished",
    sweeps_pb2.SWEEP_STATE_STOPPED: "stopped",
    sweeps_pb2.SWEEP_STATE_CANCELLED: "cancelled",
}
RUN_STATES = {
    sweeps_pb2.RUN_STATE_RUNNING: "running",
    sweeps_pb2.RUN_STATE_FINISHED: "finished",
    sweeps_pb2.RUN_STATE_FAILED: "failed",
    sweeps_pb2.RUN_STATE_CRASHED: "crashed",
    sweeps_pb2.RUN_STATE_STOPPED: "stopped",
}
RUN_STATE_ORDER = ("running", "finished", "failed", "crashed", "stopped")

COMMAND_RPCS = {
    "pause": "PauseSweep",
    "resume": "ResumeSweep",
    "stop": "StopSweep",
    "cancel": "CancelSweep",
}
COMMAND_HELP = {
    "pause": "hand out no new runs until resumed (running runs carry on)",
    "resume": "hand out runs again after a pause",
    "stop": "let running runs finish and hand out nothing more (final)",
    "cancel": "tell agents to kill the running runs and hand out nothing more (final)",
}

# ------------------------------------------------------------------------ JSON forms


def _loads_object(text: str) -> Any:
    """A JSON object carried in a string field; ``{}`` when empty (an unset field)."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text


def _number(value: float) -> float | None:
    """JSON has no NaN/Infinity; a metric that is one shows as null rather than break parsers."""
    return value if math.isfinite(value) else None


def sweep_json(sweep: sweeps_pb2.Sweep) -> dict[str, Any]:
    """The documented JSON form of a sweep (``sweep show --json``, ``sweep list --json``)."""
    counts = {state: int(getattr(sweep.run_counts, state)) for state in RUN_STATE_ORDER}
    best = None
    if sweep.HasField("best_run_id"):
        best = {
            "id": sweep.best_run_id,
            "metric": _number(sweep.best_metric) if sweep.HasField("best_metric") else None,
            "config": None,  # filled in by `sweep show`, which fetches the run
        }
    metric = None
    if sweep.metric_name:
        metric = {"name": sweep.metric_name, "goal": sweep.metric_goal or None}
    return {
        "id": sweep.id,
        "name": sweep.name or None,
        "state": SWEEP_STATES.get(sweep.state, "unknown"),
        "state_reason": sweep.state_reason or None,
        "method": sweep.method,
        "metric": metric,
        "expected_run_count": (
            int(sweep.expected_run_count) if sweep.HasField("expected_run_count") else None
        ),
        "run_counts": counts,
        "run_count": sum(counts.values()),
        "best_run": best,
        "created_at": sweep.created_at,
        "seed": int(sweep.seed),
        "log_seq": int(sweep.log_seq),
        "warnings": list(sweep.warnings),
        "config": _loads_object(sweep.config_json),
    }


def run_json(run: sweeps_pb2.Run) -> dict[str, Any]:
    """The documented JSON form of a run (each item of ``sweep runs --json``)."""
    return {
        "id": run.id,
        "sweep_id": run.sweep_id,
        "state": RUN_STATES.get(run.state, "unknown"),
        "config": _loads_object(run.config_json),
        "agent_id": run.agent_id or None,
        "grid_index": int(run.grid_index) if run.HasField("grid_index") else None,
        "summary": {k: _number(v) for k, v in sorted(run.summary.items())},
        "best_metric": _number(run.best_metric) if run.HasField("best_metric") else None,
        "metric_count": int(run.metric_count),
        "reason": run.reason or None,
        "stop_reason": run.stop_reason or None,
        "exit_code": int(run.exit_code) if run.HasField("exit_code") else None,
        "suggestion_seed": int(run.suggestion_seed),
        "created_at": run.created_at,
        "ended_at": run.ended_at or None,
    }


def event_json(event: sweeps_pb2.Event) -> dict[str, Any]:
    """The documented JSON form of an audit-log event (each line of ``sweep events --json``)."""
    return {
        "seq": int(event.seq),
        "type": event.type,
        "version": int(event.version),
        "time": event.time,
        "sweep_id": event.sweep_id or None,
        "data": _loads_object(event.data_json),
    }


# ------------------------------------------------------------------------ human text


def format_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()
) -> str:
    """Columns padded to their widest cell, two spaces apart; columns in ``right`` (indexes)
    are right-aligned (numbers). Trailing spaces are trimmed from every line."""
    body = [list(map(str, row)) for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    right_set = set(right)

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right_set else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in body)])


def format_metric(value: float | None) -> str:
    """A metric value short enough for a table cell and exact enough to compare runs."""
    if value is None:
        return "-"
    return f"{value:.6g}"


def format_time(seconds: float | None) -> str:
    """Unix seconds as UTC wall time; ``-`` for unset (0 or None)."""
    if not seconds:
        return "-"
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_params(config: Any, prefix: str = "") -> str:
    """A run's parameters on one line, ``a=1 b.c=x``, nested keys dotted, keys in order."""
    if not isinstance(config, Mapping):
        return json.dumps(config)
    parts = []
    for key in sorted(config):
        value = config[key]
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            parts.append(format_params(value, name + "."))
        else:
            parts.append(f"{name}={_short_value(value)}")
    return " ".join(parts)


def _short_value(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) and value and " " not in value else json.dumps(value)
    if isinstance(value, float):
        text = f"{value:.6g}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_counts(counts: Mapping[str, int]) -> str:
    """``finished 5, running 2`` (states with no runs left out); ``none`` when empty."""
    parts = [f"{state} {counts[state]}" for state in RUN_STATE_ORDER if counts.get(state)]
    return ", ".join(parts) or "none"


def render_show(sweep: Mapping[str, Any]) -> str:
    """``sweep show``: one aligned ``field  value`` line per fact."""
    metric = sweep["metric"]
    expected = sweep["expected_run_count"]
    best = sweep["best_run"]
    rows: list[tuple[str, str]] = [("id", sweep["id"])]
    if sweep["name"]:
        rows.append(("name", sweep["name"]))
    state = sweep["state"]
    if sweep["state_reason"]:
        state += f" ({sweep['state_reason']})"
    rows += [
        ("state", state),
        ("method", sweep["method"]),
        ("metric", f"{metric['name']} ({metric['goal']})" if metric else "-"),
        ("expected runs", "unbounded" if expected is None else str(expected)),
        ("runs", f"{sweep['run_count']} ({format_counts(sweep['run_counts'])})"),
    ]
    if best is not None:
        name = metric["name"] if metric else "metric"
        rows.append(("best run", f"{best['id']}  {name}={format_metric(best['metric'])}"))
        if best["config"] is not None:
            rows.append(("best config", format_params(best["config"])))
    else:
        rows.append(("best run", "-"))
    rows.append(("created", format_time(sweep["created_at"]) + " UTC"))
    rows.append(("seed", str(sweep["seed"])))
    rows += [("warning", w) for w in sweep["warnings"]]
    width = max(len(field) for field, _ in rows)
    return "\n".join(f"{field:<{width}}  {value}".rstrip() for field, value in rows)


def render_list(sweeps: Sequence[Mapping[str, Any]]) -> str:
    """``sweep list``: one row per sweep, oldest first."""
    if not sweeps:
        return "no sweeps"
    rows = []
    for s in sweeps:
        expected = s["expected_run_count"]
        best = s["best_run"]
        metric = s["metric"]
        rows.append([
            s["id"],
            s["name"] or "-",
            s["state"],
            s["method"],
            str(s["run_count"]),
            "-" if expected is None else str(expected),
            f"{metric['name']} ({metric['goal']})" if metric else "-",
            format_metric(best["metric"]) if best else "-",
            format_time(s["created_at"]),
        ])
    headers = ["ID", "NAME", "STATE", "METHOD", "RUNS", "EXPECTED", "METRIC", "BEST", "CREATED"]
    return format_table(headers, rows, right=(4, 5, 7))


def render_runs(
    runs: Sequence[Mapping[str, Any]], sweep: Mapping[str, Any], now: float
) -> str:
    """``sweep runs``: one row per run; the best run (by the sweep's metric) is starred."""
    if not runs:
        return f"sweep {sweep['id']} has no runs yet"
    metric = sweep["metric"]
    best = sweep["best_run"]
    best_id = best["id"] if best else None
    rows = []
    for r in runs:
        end = r["ended_at"] or (now if r["state"] == "running" else None)
        duration = end - r["created_at"] if end and r["created_at"] else None
        rows.append([
            ("* " if r["id"] == best_id else "  ") + r["id"],
            r["state"],
            format_metric(r["best_metric"]),
            str(r["metric_count"]),
            format_duration(duration),
            format_params(r["config"]),
        ])
    metric_header = metric["name"].upper() if metric else "METRIC"
    headers = ["  RUN", "STATE", metric_header, "RECORDS", "DURATION", "PARAMETERS"]
    return format_table(headers, rows, right=(2, 3, 4))


EVENT_TYPE_WIDTH = 16
"""The longest event type name (``RunStopRequested``); events stream, so widths are fixed."""


def render_event(event: Mapping[str, Any]) -> str:
    """``sweep events``: ``SEQ  TIME  TYPE  key=value ...`` on one line; long values cut."""
    data = event["data"]
    if isinstance(data, Mapping):
        details = " ".join(f"{k}={_short_value(v)}" for k, v in data.items() if k != "sweep_id")
    else:
        details = _short_value(data)
    when = format_time(event["time"])
    return f"{event['seq']:>6}  {when}  {event['type']:<{EVENT_TYPE_WIDTH}}  {details}".rstrip()


def dump_json(value: Any, out: TextIO) -> None:
    json.dump(value, out, indent=2, sort_keys=False)
    out.write("\n")


# ------------------------------------------------------------------------ commands


@dataclass
class Context:
    """What every command needs: the resolved address, a stub, a deadline, the streams."""

    address: str
    stub: Any
    timeout: float
    out: TextIO
    err: TextIO


def cmd_create(ctx: Context, args: argparse.Namespace) -> int:
    # Imported here: the config core loads numpy and scipy, which no other command needs.
    from controller.core.config import parse_config, parse_yaml
    from controller.validate import read_config_text

    try:
        config = parse_config(parse_yaml(read_config_text(args.config)))
    except ConfigError as e:
        count = len(e.problems)
        ctx.err.write(f"{args.config}: invalid config ({count} problem{'s' * (count != 1)})\n")
        for problem in e.problems:
            ctx.err.write(f"{problem}\n")
        return EXIT_INVALID
    request = create_sweep_request(config, args.seed)
    sweep = ctx.stub.CreateSweep(request, timeout=ctx.timeout).sweep
    ctx.out.write(sweep.id + "\n")
    ctx.out.flush()
    for warning in sweep.warnings:
        ctx.err.write(f"warning: {warning}\n")
    expected = (
        f"{sweep.expected_run_count} runs" if sweep.HasField("expected_run_count") else "unbounded"
    )
    ctx.err.write(
        f"created sweep {sweep.id} ({sweep.method}, {expected}) on {ctx.address}\n"
        f"start an agent with: agent --sweep {sweep.id} --controller {ctx.address}\n"
    )
    return EXIT_OK


def _get_sweep(ctx: Context, sweep_id: str) -> sweeps_pb2.Sweep:
    request = sweeps_pb2.GetSweepRequest(sweep_id=sweep_id)
    return ctx.stub.GetSweep(request, timeout=ctx.timeout)


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.stub.ListSweeps(sweeps_pb2.ListSweepsRequest(), timeout=ctx.timeout)
    sweeps = [sweep_json(s) for s in reply.sweeps]
    if args.json:
        dump_json({"sweeps": sweeps}, ctx.out)
    else:
        ctx.out.write(render_list(sweeps) + "\n")
    return EXIT_OK


def cmd_show(ctx: Context, args: argparse.Namespace) -> int:
    sweep = sweep_json(_get_sweep(ctx, args.sweep_id))
    if sweep["best_run"] is not None:
        # What a person wants from a sweep in the end: the parameters that won.
        run = ctx.stub.GetRun(
            sweeps_pb2.GetRunRequest(run_id=sweep["best_run"]["id"]), timeout=ctx.timeout
        )
        sweep["best_run"]["config"] = _loads_object(run.config_json)
    if args.json:
        dump_json(sweep, ctx.out)
    else:
        ctx.out.write(render_show(sweep) + "\n")
    return EXIT_OK


def cmd_runs(ctx: Context, args: argparse.Namespace) -> int:
    sweep = sweep_json(_get_sweep(ctx, args.sweep_id))
    reply = ctx.stub.ListRuns(
        sweeps_pb2.ListRunsRequest(sweep_id=args.sweep_id), timeout=ctx.timeout
    )
    runs = [run_json(r) for r in reply.runs]
    if args.json:
        dump_json({"sweep_id": sweep["id"], "runs": runs}, ctx.out)
    else:
        ctx.out.write(render_runs(runs, sweep, time.time()) + "\n")
    return EXIT_OK


def cmd_state_change(ctx: Context, args: argparse.Namespace) -> int:
    rpc = getattr(ctx.stub, COMMAND_RPCS[args.command])
    sweep = rpc(sweeps_pb2.SweepCommandRequest(sweep_id=args.sweep_id), timeout=ctx.timeout)
    state = SWEEP_STATES.get(sweep.state, "unknown")
    ctx.out.write(f"sweep {sweep.id} is {state}\n")
    return EXIT_OK


def cmd_events(ctx: Context, args: argparse.Namespace) -> int:
    if args.sweep_id:
        _get_sweep(ctx, args.sweep_id)  # NOT_FOUND here rather than an empty log
    request = sweeps_pb2.ReadEventsRequest(
        after_seq=args.after, sweep_id=args.sweep_id or "", follow=args.follow
    )
    # A followed stream has no deadline: it lasts until Ctrl-C or the controller goes away.
    stream = ctx.stub.ReadEvents(request, timeout=None if args.follow else ctx.timeout)
    try:
        for event in stream:
            body = event_json(event)
            if args.json:
                ctx.out.write(json.dumps(body) + "\n")
            else:
                ctx.out.write(render_event(body) + "\n")
            ctx.out.flush()
    finally:
        stream.cancel()
    if args.follow:
        # A followed stream only ends when the controller ends it: say so, don't exit silently.
        _fail(ctx.err, f"the controller at {ctx.address} closed the event stream "
                       "(shutting down?); rerun with --after SEQ to resume")
        return EXIT_UNREACHABLE
    return EXIT_OK


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    "create": cmd_create,
    "list": cmd_list,
    "show": cmd_show,
    "runs": cmd_runs,
    "events": cmd_events,
    **{name: cmd_state_change for name in COMMAND_RPCS},
}


# ------------------------------------------------------------------------ parsing


def _sweep_id(text: str) -> str:
    """Accept W&B's ``entity/project/ID`` form too: the id is the last part."""
    value = text.strip().rsplit("/", 1)[-1]
    if not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not a sweep id")
    return value


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds (got {text})")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**64-1 (got {text})")
    return value


def _sequence(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a sequence number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


def _connection_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("controller connection")
    group.add_argument(
        "--controller", metavar="HOST:PORT",
        help="controller address (default: $OPENSWEEP_CONTROLLER, else 127.0.0.1:50051)")
    group.add_argument(
        "--token-file", metavar="FILE",
        help="file holding the controller's shared-secret token (default: $OPENSWEEP_TOKEN)")
    group.add_argument(
        "--tls-ca", metavar="PEM",
        help="CA certificate to verify a TLS controller with (default: $OPENSWEEP_TLS_CA)")
    group.add_argument("--tls", action="store_true",
                       help="use TLS with the system's root certificates")
    group.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"deadline for each call (default: {DEFAULT_TIMEOUT:g})")
    return common


def add_commands(commands: Any) -> None:
    """Add the controller-backed subcommands to ``sweep``'s subparsers."""
    common = _connection_options()
    create = commands.add_parser(
        "create", parents=[common], help="create a sweep from a config (prints its id)",
        description="Validate CONFIG.yaml locally, create the sweep on the controller and print "
        "its id alone on stdout. An invalid config exits 2 with every problem, one per line.")
    create.add_argument("config", metavar="CONFIG.yaml", help="the sweep config ('-': stdin)")
    create.add_argument("--seed", type=_seed, default=None,
                        help="seed for the sweep's randomness (default: the controller picks one)")
    listing = commands.add_parser("list", parents=[common], help="list the controller's sweeps")
    listing.add_argument("--json", action="store_true", help="print JSON (see docs/cli.md)")
    show = commands.add_parser(
        "show", parents=[common], help="state, counts of runs and best run of a sweep")
    show.add_argument("sweep_id", metavar="ID", type=_sweep_id)
    show.add_argument("--json", action="store_true", help="print JSON (see docs/cli.md)")
    runs = commands.add_parser("runs", parents=[common], help="the runs of a sweep")
    runs.add_argument("sweep_id", metavar="ID", type=_sweep_id)
    runs.add_argument("--json", action="store_true", help="print JSON (see docs/cli.md)")
    for name, text in COMMAND_HELP.items():
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.add_argument("sweep_id", metavar="ID", type=_sweep_id)
    events = commands.add_parser(
        "events", parents=[common], help="the audit log of a sweep, one event per line")
    events.add_argument("sweep_id", metavar="ID", type=_sweep_id, nargs="?", default=None,
                        help="the sweep (default: every event of the controller)")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.add_argument("--follow", "-f", action="store_true",
                        help="keep printing new events as they happen (Ctrl-C to end)")
    events.add_argument("--after", type=_sequence, default=0, metavar="SEQ",
                        help="only events with a sequence number greater than SEQ")


# ------------------------------------------------------------------------ running


def _fail(err: TextIO, message: str) -> None:
    err.write(f"sweep: error: {message}\n")


def _rpc_exit(
    exc: grpc.RpcError, args: argparse.Namespace, address: str, token_sent: bool, err: TextIO
) -> int:
    code = exc.code() if hasattr(exc, "code") else None
    sweep_id = getattr(args, "sweep_id", "")
    if code == grpc.StatusCode.NOT_FOUND and sweep_id:
        _fail(err, f"no sweep {sweep_id!r} on the controller at {address} "
                   "(`sweep list` shows its sweeps)")
        return EXIT_FAILED
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        details = (exc.details() or "invalid argument").splitlines()
        _fail(err, f"the controller at {address} rejected the request:")
        for line in details:
            err.write(f"{line}\n")
        return EXIT_INVALID
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        _fail(err, exc.details() or "the sweep is not in a state that allows this")
        return EXIT_FAILED
    _fail(err, describe_rpc_error(exc, address, token_sent=token_sent))
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return EXIT_UNREACHABLE
    return EXIT_FAILED


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one parsed controller-backed command; returns the exit code, never raises for the
    expected failures (bad address or token file, RPC errors, a closed pipe, Ctrl-C)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    address = args.controller or ""
    token: str | None = None
    try:
        address = resolve_address(args.controller)
        token = read_token(args.token_file)
        channel = sync_channel(address, token=token, tls=args.tls, tls_ca=args.tls_ca)
    except ClientSetupError as exc:
        _fail(err, str(exc))
        return EXIT_INVALID
    try:
        with channel:
            ctx = Context(address, sweep_stub(channel), args.timeout, out, err)
            return COMMANDS[args.command](ctx, args)
    except grpc.RpcError as exc:
        return _rpc_exit(exc, args, address, token is not None, err)
    except ClientSetupError as exc:
        _fail(err, str(exc))
        return EXIT_INVALID
    except BrokenPipeError:  # `sweep events ... | head`: the reader left
        _silence(out)
        return EXIT_OK
    except KeyboardInterrupt:  # the normal end of `--follow`; an abort anywhere else
        return EXIT_OK if getattr(args, "follow", False) else EXIT_INTERRUPTED


def _silence(out: TextIO) -> None:
    """Point a closed stdout at /dev/null so Python's exit-time flush stays quiet."""
    try:
        fd = out.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
