"""State -> protobuf views. One place, so every RPC shows a sweep or a run the same way."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from controller import jsontext
from controller.core.state import Run, State, Sweep
from opensweep.v1 import sweeps_pb2

INT64_MAX = 2**63 - 1

SWEEP_STATES = {
    "running": sweeps_pb2.SWEEP_STATE_RUNNING,
    "paused": sweeps_pb2.SWEEP_STATE_PAUSED,
    "finished": sweeps_pb2.SWEEP_STATE_FINISHED,
    "stopped": sweeps_pb2.SWEEP_STATE_STOPPED,
    "cancelled": sweeps_pb2.SWEEP_STATE_CANCELLED,
}
RUN_STATES = {
    "running": sweeps_pb2.RUN_STATE_RUNNING,
    "finished": sweeps_pb2.RUN_STATE_FINISHED,
    "failed": sweeps_pb2.RUN_STATE_FAILED,
    "crashed": sweeps_pb2.RUN_STATE_CRASHED,
    "stopped": sweeps_pb2.RUN_STATE_STOPPED,
}
RUN_STATE_NAMES = {value: name for name, value in RUN_STATES.items()}


def to_json(value: Any) -> str:
    """Compact JSON of a config or params (NaN and infinities as ``json`` writes them)."""
    return jsontext.dumps(value)


def expected_run_count(sweep: Sweep) -> int | None:
    """Grid size capped by run_cap; run_cap alone for random and bayes; None when unbounded."""
    if sweep.grid_size is None:
        return sweep.run_cap
    if sweep.run_cap is None:
        return sweep.grid_size
    return min(sweep.grid_size, sweep.run_cap)


def sweep_view(sweep: Sweep, log_seq: int) -> sweeps_pb2.Sweep:
    counts = sweep.counts
    message = sweeps_pb2.Sweep(
        id=sweep.id,
        state=SWEEP_STATES[sweep.state],
        method=sweep.method,
        name=sweep.name,
        config_json=to_json(sweep.config),
        run_counts=sweeps_pb2.RunCounts(
            running=counts["running"], finished=counts["finished"], failed=counts["failed"],
            crashed=counts["crashed"], stopped=counts["stopped"]),
        metric_name=sweep.metric_name,
        metric_goal=sweep.metric_goal,
        created_at=sweep.created_at,
        state_reason=sweep.state_reason,
        warnings=sweep.warnings,
        log_seq=log_seq,
        seed=sweep.seed % 2**64,
    )
    expected = expected_run_count(sweep)
    if expected is not None:
        message.expected_run_count = min(expected, INT64_MAX)
    if sweep.best_run_id is not None and sweep.best_metric is not None:
        message.best_run_id = sweep.best_run_id
        message.best_metric = sweep.best_metric
    return message


def run_view(run: Run, log_seq: int) -> sweeps_pb2.Run:
    summary = {
        name: float(value) for name, value in run.summary.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    message = sweeps_pb2.Run(
        id=run.id,
        sweep_id=run.sweep_id,
        state=RUN_STATES[run.state],
        config_json=to_json(run.params),
        agent_id=run.agent_id,
        summary=summary,
        metric_count=run.metric_count,
        reason=run.reason,
        created_at=run.created_at,
        ended_at=run.ended_at or 0.0,
        log_seq=log_seq,
        suggestion_seed=run.suggestion_seed % 2**64,
        stop_reason=run.stop_reason or "",
    )
    if run.grid_index is not None:
        message.grid_index = min(run.grid_index, INT64_MAX)
    if run.best_metric is not None and math.isfinite(run.best_metric):
        message.best_metric = run.best_metric
    if run.exit_code is not None:
        message.exit_code = run.exit_code
    return message


def metric_record_views(records: Iterable[dict[str, Any]]) -> list[sweeps_pb2.MetricRecord]:
    """Metric records as stored in ``MetricsLogged`` events, as the RPCs show them."""
    return [sweeps_pb2.MetricRecord(seq=r["seq"], step=int(r["step"]),
                                    values={k: float(v) for k, v in r["values"].items()},
                                    time=r["time"])
            for r in records]


def state_views(state: State, sweep_id: str) -> tuple[sweeps_pb2.Sweep, list[sweeps_pb2.Run]]:
    """A sweep and its runs as the RPCs show them at the State's seq (for replay checks)."""
    sweep = state.sweep(sweep_id)
    return (sweep_view(sweep, state.seq),
            [run_view(state.runs[r], state.seq) for r in sweep.run_ids])
