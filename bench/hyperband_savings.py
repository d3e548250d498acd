"""Compute saved by hyperband early termination on a synthetic learning-curve workload.

A sweep of ``--runs`` runs (method random) is simulated step by step with ``--workers`` agents:
each tick every running run logs one more value of its learning curve, then the engine's
``stop_runs`` is asked which running runs to stop (as the controller does when metrics arrive),
and free agents take the engine's next run. Three arms see the same configs in the same order
and the same noise:

- no early termination: every run trains ``--steps`` steps;
- opensweep hyperband: ``opensweep.engine.stop_runs``;
- W&B hyperband: ``sweeps.stop_runs`` (the anchor), on the same runs.

Reported per arm (median over seeds): total steps trained (the compute), the sweep's best metric
(the lowest last-logged loss of any run), the true final loss of that best run's config, and how
often the best config of the sweep was stopped early. A fourth figure gives hyperband the same
step budget the no-early-termination sweep used, to show what the saved compute buys.

Learning curve of a run with config c: ``loss_t = final(c) + (start - final(c)) * exp(-t /
tau(c)) + noise``; small learning rates converge slowly but are not worse at the end, so early
stopping can be wrong — as in real sweeps.

``python -m bench hyperband_savings [--quick] [--seeds N] [--runs N] [--workers N]
[--steps N] [--out DIR]``
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import bench

METRIC = "val_loss"
START_LOSS = 2.3
NOISE = 0.01
_WIDTH_PENALTY = {64: 0.06, 128: 0.02, 256: 0.0, 512: 0.01}


def sweep_config(steps: int, early_terminate: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "method": "random",
        "metric": {"name": METRIC, "goal": "minimize"},
        "parameters": {
            "learning_rate": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
            "width": {"values": [64, 128, 256, 512]},
            "weight_decay": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1e-1},
            "epochs": {"value": steps},
        },
    }
    if early_terminate:
        config["early_terminate"] = {"type": "hyperband", "min_iter": 3, "eta": 3}
    return config


def final_loss(params: dict[str, Any]) -> float:
    """The loss a config reaches at the end of training (noise-free)."""
    log_lr = math.log10(float(params["learning_rate"]))
    log_wd = math.log10(float(params["weight_decay"]))
    q = ((log_lr + 2.6) / 1.1) ** 2 + ((log_wd + 3.5) / 1.5) ** 2
    return 0.25 + 1.6 * (1 - math.exp(-0.5 * q)) + _WIDTH_PENALTY[int(params["width"])]


def time_constant(params: dict[str, Any]) -> float:
    """Steps to converge: small learning rates are slow."""
    log_lr = math.log10(float(params["learning_rate"]))
    return 2.0 + 12.0 / (1.0 + math.exp(2.0 * (log_lr + 3.0)))


@dataclass
class SimRun:
    id: str
    params: dict[str, Any]
    curve: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)
    state: str = "running"

    @property
    def steps(self) -> int:
        return len(self.history)


def make_curve(params: dict[str, Any], steps: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(1, steps + 1)
    final = final_loss(params)
    tau = time_constant(params)
    return final + (START_LOSS - final) * np.exp(-t / tau) + rng.normal(0.0, NOISE, steps)


StopFn = Callable[[dict[str, Any], list[SimRun]], list[str]]
NextFn = Callable[[dict[str, Any], list[SimRun], int], dict[str, Any]]


def opensweep_next() -> NextFn:
    from bench._engine import load

    next_run, _, _ = load()

    def next_params(config: dict[str, Any], runs: list[SimRun], seed: int) -> dict[str, Any]:
        suggestion = next_run(config, [_plain(r) for r in runs], seed)
        if suggestion is None:
            raise RuntimeError("opensweep.engine.next_run returned None for a random sweep")
        return dict(suggestion)

    return next_params


def _import_sweeps() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic 2 renamed-config-key warning
        import sweeps
    return sweeps


def wandb_next() -> NextFn:
    sweeps = _import_sweeps()

    def next_params(config: dict[str, Any], runs: list[SimRun], seed: int) -> dict[str, Any]:
        np.random.seed(seed % 2**32)
        random.seed(seed)
        run = sweeps.next_run(config, [])
        return {k: v["value"] for k, v in run.config.items()}

    return next_params


def _plain(run: SimRun) -> dict[str, Any]:
    summary = {METRIC: run.history[-1][METRIC]} if run.history else {}
    return {
        "id": run.id,
        "config": run.params,
        "state": run.state,
        "summary": summary,
        "history": run.history,
    }


def opensweep_stop() -> StopFn:
    from bench._engine import load

    _, stop_runs, _ = load()

    def stop(config: dict[str, Any], runs: list[SimRun]) -> list[str]:
        return list(stop_runs(config, [_plain(r) for r in runs]))

    return stop


def wandb_stop() -> StopFn:
    sweeps = _import_sweeps()

    state_of = {
        "running": sweeps.RunState.running,
        "finished": sweeps.RunState.finished,
        "stopped": sweeps.RunState.killed,
    }

    def stop(config: dict[str, Any], runs: list[SimRun]) -> list[str]:
        wb_runs = [
            sweeps.SweepRun(
                name=r.id,
                state=state_of[r.state],
                config={k: {"value": v} for k, v in r.params.items()},
                sampledHistory=r.history,
                summaryMetrics={METRIC: r.history[-1][METRIC]} if r.history else {},
            )
            for r in runs
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [r.name for r in sweeps.stop_runs(config, wb_runs) if r.name is not None]

    return stop


def simulate(
    *,
    seed: int,
    runs_cap: int | None,
    step_budget: int | None,
    workers: int,
    steps: int,
    next_params: NextFn,
    stop: StopFn | None,
) -> dict[str, Any]:
    """One sweep, tick by tick; ends at ``runs_cap`` runs or once ``step_budget`` is spent."""
    config = sweep_config(steps, early_terminate=stop is not None)
    runs: list[SimRun] = []
    spent = 0
    stop_calls = 0
    stop_seconds = 0.0

    def may_start() -> bool:
        if runs_cap is not None and len(runs) >= runs_cap:
            return False
        return step_budget is None or spent < step_budget

    while True:
        running = [r for r in runs if r.state == "running"]
        while len(running) < workers and may_start():
            index = len(runs)
            params = next_params(config, runs, seed * 100_003 + index)
            rng = np.random.default_rng([seed, index])
            run = SimRun(f"run-{index}", params, make_curve(params, steps, rng))
            runs.append(run)
            running.append(run)
        if not running:
            break
        for run in running:
            step = run.steps
            run.history.append({METRIC: float(run.curve[step]), "_step": step})
            spent += 1
            if run.steps >= steps:
                run.state = "finished"
        if step_budget is not None and spent >= step_budget:
            for run in runs:
                if run.state == "running":
                    run.state = "stopped"
            break
        if stop is not None and any(r.state == "running" for r in runs):
            started = time.perf_counter()
            to_stop = set(stop(config, runs))
            stop_seconds += time.perf_counter() - started
            stop_calls += 1
            for run in runs:
                if run.id in to_stop and run.state == "running":
                    run.state = "stopped"

    finals = {r.id: final_loss(r.params) for r in runs}
    best = min(runs, key=lambda r: r.history[-1][METRIC])
    oracle = min(runs, key=lambda r: finals[r.id])
    return {
        "runs": len(runs),
        "steps": spent,
        "stopped_runs": sum(r.state == "stopped" for r in runs),
        "best_metric": best.history[-1][METRIC],
        "best_run_true_final": finals[best.id],
        "best_config_true_final": finals[oracle.id],
        "best_config_stopped": oracle.state == "stopped",
        "ms_per_stop_decision": (stop_seconds / stop_calls * 1e3) if stop_calls else None,
    }


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return float(np.median([r[key] for r in rows]))

    ms = [r["ms_per_stop_decision"] for r in rows if r["ms_per_stop_decision"] is not None]
    return {
        "runs": med("runs"),
        "steps": med("steps"),
        "stopped_runs": med("stopped_runs"),
        "best_metric": med("best_metric"),
        "best_run_true_final": med("best_run_true_final"),
        "best_config_true_final": med("best_config_true_final"),
        "best_config_stopped_fraction": float(np.mean([r["best_config_stopped"] for r in rows])),
        "ms_per_stop_decision": float(np.median(ms)) if ms else None,
    }


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    arms = report["arms"]
    base = arms["no_early_termination"]["summary"]
    lines = [
        "# Hyperband early termination: compute saved",
        "",
        f"Synthetic learning curves, {s['runs']} runs of up to {s['steps']} steps, "
        f"{s['workers']} agents in parallel, method random, `early_terminate: {{type: "
        f"hyperband, min_iter: 3, eta: 3}}`; median over {s['seeds']} seeds. Configs come from "
        f"{s['config_source']}. Measured {s['finished_at']} with `python -m bench "
        f"hyperband_savings{' --quick' if s['quick'] else ''}` ({s['wall_seconds']:.0f} s). "
        f"{bench.code_note(report['environment'])}.",
        "",
    ]
    if report["missing"]:
        lines += [f"- not run: {k}: {v}" for k, v in report["missing"].items()] + [""]
    lines += [
        "| arm | runs | steps trained | steps vs no ET | stopped runs | best metric | "
        "true final loss of best run | best config stopped early | ms per stop decision |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms.values():
        r = arm["summary"]
        ms = "—" if r["ms_per_stop_decision"] is None else bench.fmt(r["ms_per_stop_decision"])
        lines.append(
            f"| {arm['label']} | {r['runs']:.0f} | {r['steps']:.0f} | "
            f"{r['steps'] / base['steps']:.0%} | {r['stopped_runs']:.0f} | "
            f"{bench.fmt(r['best_metric'], 4)} | {bench.fmt(r['best_run_true_final'], 4)} | "
            f"{r['best_config_stopped_fraction']:.0%} of seeds | {ms} |"
        )
    lines += [
        "",
        "Best metric: the lowest last-logged loss of any run (what the sweep reports as best). "
        "True final loss: the noise-free loss that run's config reaches after all steps. "
        "'Best config stopped early': the config with the lowest true final loss among those "
        "the sweep started was stopped by hyperband.",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench hyperband_savings", description=__doc__)
    p.add_argument("--quick", action="store_true", help="3 seeds, 27 runs")
    p.add_argument("--seeds", type=int, help="default 10; quick 3")
    p.add_argument("--runs", type=int, help="runs per sweep (default 81; quick 27)")
    p.add_argument("--workers", type=int, default=4, help="parallel agents (default 4)")
    p.add_argument("--steps", type=int, default=81, help="steps of a full run (default 81)")
    p.add_argument("--out", help="output directory (default bench/results[/quick])")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environment = bench.environment()  # before the run: the code as it was when measured
    seeds = args.seeds or (3 if args.quick else 10)
    runs_cap = args.runs or (27 if args.quick else 81)
    out_dir = bench.results_dir(args.quick, args.out)
    missing: dict[str, str] = {}
    try:
        next_params = opensweep_next()
        ours_stop: StopFn | None = opensweep_stop()
        source = "opensweep's engine, method random (see environment.engine)"
    except (ImportError, AttributeError) as exc:
        missing["opensweep hyperband"] = f"{type(exc).__name__}: {exc}"
        next_params = wandb_next()
        ours_stop = None
        source = "`sweeps.next_run` (method random; opensweep.engine unavailable)"
    try:
        wb_stop: StopFn | None = wandb_stop()
    except ImportError as exc:
        missing["W&B hyperband"] = f"{type(exc).__name__}: {exc}"
        wb_stop = None

    started = time.monotonic()
    common = {"workers": args.workers, "steps": args.steps, "next_params": next_params}
    arms: dict[str, Any] = {}
    plan: list[tuple[str, str, StopFn | None]] = [
        ("no_early_termination", "no early termination", None)
    ]
    if ours_stop is not None:
        plan.append(("opensweep_hyperband", "opensweep hyperband", ours_stop))
    if wb_stop is not None:
        plan.append(("wandb_hyperband", "W&B hyperband (sweeps.stop_runs)", wb_stop))
    for key, label, stop in plan:
        rows = [
            simulate(seed=s, runs_cap=runs_cap, step_budget=None, stop=stop, **common)
            for s in range(seeds)
        ]
        arms[key] = {"label": label, "summary": _summary(rows), "per_seed": rows}
        print(f"  {label}: {arms[key]['summary']}", flush=True)
    budget_rows = []
    ref_stop = ours_stop or wb_stop
    if ref_stop is not None:
        base_rows = arms["no_early_termination"]["per_seed"]
        for s in range(seeds):
            budget_rows.append(
                simulate(
                    seed=s,
                    runs_cap=None,
                    step_budget=base_rows[s]["steps"],
                    stop=ref_stop,
                    **common,
                )
            )
        label = ("opensweep" if ours_stop else "W&B") + " hyperband, same step budget as no ET"
        arms["equal_budget"] = {
            "label": label,
            "summary": _summary(budget_rows),
            "per_seed": budget_rows,
        }
        print(f"  {label}: {arms['equal_budget']['summary']}", flush=True)
    report = {
        "benchmark": "hyperband_savings",
        "settings": {
            "quick": args.quick,
            "seeds": seeds,
            "runs": runs_cap,
            "workers": args.workers,
            "steps": args.steps,
            "config_source": source,
            "early_terminate": sweep_config(args.steps, True)["early_terminate"],
            "wall_seconds": time.monotonic() - started,
            "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "environment": environment,
        "missing": missing,
        "arms": arms,
    }
    bench.write_json(out_dir / "hyperband_savings.json", report)
    (out_dir / "hyperband_savings.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
