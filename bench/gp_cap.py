"""Does capping the GP's data cost regret on long sweeps? opensweep with several caps, paired.

Past :data:`controller.core.bayes.MAX_GP_POINTS` modelled runs the GP is fitted on a subset of
them (see docs/bayes.md); the speed of a suggestion at 1,000 runs depends on it. This benchmark
runs long sequential sweeps (``--evals``, default 400) with each cap in ``--caps`` (``none`` =
every run in the GP) and reports the simple regret at the ``--checkpoints``.

The comparison is paired: for each problem and seed the first ``--prefix`` evaluations (default
64, below every cap measured, so identical for all of them) are run once, and every cap continues
from that same history with the same suggestion seeds. Differences are then the cap's, not the
luck of the early runs. The regret medians over seeds are coarse (a seed that lands in another
basin moves them a lot); the per-seed wins and the geometric mean of the regret ratios per problem
are reported as well.

``python -m bench gp_cap [--quick] [--caps none,128,64] [--seeds N] [--evals N] [--prefix N]
[--functions a,b] [--jobs N] [--out DIR]``
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np

import bench
from bench.anchors import OURS, OpensweepSuggester, make_suggester
from bench.functions import PROBLEMS

FUNCTIONS = ("branin", "hartmann6", "ackley5", "ml_like")
CAPS = ("none", "128", "64")
NO_CAP = 10**9


TUNABLE = ("LINE_ROUNDS", "LARGE_STARTS", "LARGE_RANDOM_CANDIDATES", "LARGE_LOCAL_CANDIDATES",
           "LARGE_CENTRES", "LARGE_POOL")
"""Search-budget constants of the large-sweep search a variant may set besides the cap."""


def parse_variant(spec: str) -> tuple[str, dict[str, int]]:
    """``"128"``, ``"none"`` or ``"128+LINE_ROUNDS=4+LARGE_STARTS=5"``: the cap and the
    other constants to set. ValueError naming what is wrong."""
    cap, *settings = spec.split("+")
    if cap != "none" and not cap.isdigit():
        raise ValueError(f"a variant starts with a cap, 'none' or a number (got {spec!r})")
    out: dict[str, int] = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if name not in TUNABLE or not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"{setting!r} in {spec!r}: expected NAME=positive int, NAME one of "
                f"{', '.join(TUNABLE)}")
        out[name] = int(value)
    return cap, out


def _set_cap(spec: str) -> dict[str, int]:
    """Apply a variant (:func:`parse_variant`) in this worker process (module constants bayes
    reads per suggestion); every value a variant may set as it was, for :func:`_restore`."""
    from controller.core import bayes

    cap, settings = parse_variant(spec)
    before = {name: getattr(bayes, name) for name in ("MAX_GP_POINTS", *TUNABLE)}
    bayes.MAX_GP_POINTS = NO_CAP if cap == "none" else int(cap)
    for name, value in settings.items():
        setattr(bayes, name, value)
    return before


def _restore(before: dict[str, int]) -> None:
    from controller.core import bayes

    for name, value in before.items():
        setattr(bayes, name, value)


def run_paired(
    problem_name: str, seed: int, caps: list[str], evals: int, prefix: int
) -> dict[str, Any]:
    """The shared prefix once, then each cap to ``evals`` evaluations from it."""
    problem = PROBLEMS[problem_name]
    out: dict[str, Any] = {"problem": problem_name, "seed": seed, "caps": {}}
    default = _set_cap("none")  # the prefix is below every cap: any cap gives the same runs
    try:
        start = make_suggester(OURS, problem.sweep_config, seed)
        assert isinstance(start, OpensweepSuggester)
        losses: list[float] = []
        for _ in range(prefix):
            params = start.suggest()
            loss = float(problem.objective(params))
            losses.append(loss)
            start.observe(params, loss)
        for cap in caps:
            _restore(default)
            _set_cap(cap)
            suggester = make_suggester(OURS, problem.sweep_config, seed)
            assert isinstance(suggester, OpensweepSuggester)
            suggester._runs = [dict(run) for run in start._runs]
            cap_losses = list(losses)
            seconds = 0.0
            for _ in range(evals - prefix):
                started = time.perf_counter()
                params = suggester.suggest()
                seconds += time.perf_counter() - started
                loss = float(problem.objective(params))
                cap_losses.append(loss)
                suggester.observe(params, loss)
            out["caps"][cap] = {"losses": cap_losses, "suggest_seconds": seconds}
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc(limit=6)
    finally:
        _restore(default)
    return out


def aggregate(
    results: list[dict[str, Any]], problems: list[str], caps: list[str], checkpoints: list[int]
) -> dict[str, Any]:
    """Per problem and cap: regret quantiles at the checkpoints; per cap against the first."""
    out: dict[str, Any] = {}
    base = caps[0]
    for name in problems:
        problem = PROBLEMS[name]
        rows = sorted(
            (r for r in results if r["problem"] == name and "error" not in r),
            key=lambda r: r["seed"],
        )
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in rows], "caps": {}}
        regrets: dict[str, np.ndarray] = {}
        for cap in caps:
            losses = np.array([r["caps"][cap]["losses"] for r in rows])
            regret = np.maximum(np.minimum.accumulate(losses, axis=1) - problem.optimum, 0.0)
            regrets[cap] = regret
            entry["caps"][cap] = {
                "regret_median": {str(c): float(np.median(regret[:, c - 1])) for c in checkpoints},
                "regret_per_seed": {str(c): regret[:, c - 1].tolist() for c in checkpoints},
                "suggest_ms_mean": float(
                    np.mean([r["caps"][cap]["suggest_seconds"] for r in rows])
                    * 1e3
                    / max(1, losses.shape[1] - rows[0]["prefix"])
                )
                if rows
                else None,
            }
        for cap in caps[1:]:
            last = checkpoints[-1] - 1
            a, b = regrets[cap][:, last], regrets[base][:, last]
            tiny = 1e-9 * max(1.0, abs(problem.optimum))
            ratios = np.maximum(a, tiny) / np.maximum(b, tiny)
            entry["caps"][cap]["versus_" + base] = {
                "better_seeds": int((a < b - tiny).sum()),
                "worse_seeds": int((a > b + tiny).sum()),
                "geomean_ratio": float(math.exp(float(np.mean(np.log(ratios))))),
            }
        out[name] = entry
    return out


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    caps, checkpoints = s["caps"], s["checkpoints"]
    lines = [
        "# GP data cap on long sweeps",
        "",
        f"opensweep alone, {s['seeds']} seeds, {s['evals']} sequential evaluations; the first "
        f"{s['prefix']} shared by every cap (same history, same suggestion seeds after it). Cap "
        f"`none` = every modelled run in the GP. Median simple regret over seeds at each "
        f"checkpoint; the last columns compare each cap with `{caps[0]}` at "
        f"{checkpoints[-1]} evaluations per seed (better / worse seeds, geometric mean of the "
        f"regret ratios: < 1 means lower regret than `{caps[0]}`). Measured {s['finished_at']} "
        f"with `python -m bench gp_cap` ({s['wall_seconds']:.0f} s wall, {s['jobs']} processes). "
        f"{bench.code_note(report['environment'])}.",
        "",
        "| problem | cap | "
        + " | ".join(f"regret @{c}" for c in checkpoints)
        + f" | ms / suggestion | vs {caps[0]}: better / worse seeds | geomean ratio |",
        "|---|---|" + "---|" * (len(checkpoints) + 3),
    ]
    for name, entry in report["problems"].items():
        for cap in caps:
            c = entry["caps"][cap]
            cells = [bench.fmt(c["regret_median"][str(k)]) for k in checkpoints]
            versus = c.get("versus_" + caps[0])
            tail = (
                ["—", "—"]
                if versus is None
                else [
                    f"{versus['better_seeds']} / {versus['worse_seeds']}",
                    bench.fmt(versus["geomean_ratio"]),
                ]
            )
            ms = bench.fmt(c["suggest_ms_mean"])
            lines.append(f"| {name} | {cap} | " + " | ".join([*cells, ms, *tail]) + " |")
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench gp_cap", description=__doc__)
    p.add_argument("--quick", action="store_true", help="2 seeds, 150 evaluations, 2 problems")
    p.add_argument(
        "--caps",
        help=f"comma list of variants, the first is the reference (default {','.join(CAPS)}); "
        f"a variant is a cap ('none' or a number) optionally followed by +NAME=INT settings "
        f"of the large-sweep search, NAME one of {', '.join(TUNABLE)}"
    )
    p.add_argument("--seeds", type=int, help="seeds per problem (default 6; quick 2)")
    p.add_argument("--evals", type=int, help="evaluations per sweep (default 400; quick 150)")
    p.add_argument("--prefix", type=int, default=64, help="shared evaluations (default 64)")
    p.add_argument("--functions", help=f"comma list (default {','.join(FUNCTIONS)})")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--out", help="output directory (default bench/results[/quick])")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environment = bench.environment()
    seeds = args.seeds or (2 if args.quick else 6)
    evals = args.evals or (150 if args.quick else 400)
    caps = args.caps.split(",") if args.caps else list(CAPS)
    try:
        cap_values = [parse_variant(c)[0] for c in caps]
    except ValueError as exc:
        print(f"gp_cap: {exc}", file=sys.stderr)
        return 2
    if any(c != "none" and int(c) < args.prefix for c in cap_values) or not 0 < args.prefix < evals:
        print("gp_cap: need 0 < --prefix < --evals and --prefix <= every cap", file=sys.stderr)
        return 2
    default_functions = FUNCTIONS[1:3] if args.quick else FUNCTIONS
    problems = args.functions.split(",") if args.functions else list(default_functions)
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        print(f"gp_cap: unknown problems: {', '.join(unknown)}", file=sys.stderr)
        return 2
    checkpoints = sorted({c for c in (100, 200, 300, 400, evals) if args.prefix < c <= evals})
    out_dir = bench.results_dir(args.quick, args.out)
    tasks = [(p, s, caps, evals, args.prefix) for p in problems for s in range(seeds)]
    print(f"gp_cap: {len(tasks)} paired sweeps x {len(caps)} caps on {args.jobs} processes")
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_paired, *t) for t in tasks]
        for i, fut in enumerate(as_completed(futures), 1):
            r = fut.result()
            r["prefix"] = args.prefix
            results.append(r)
            if "error" in r:
                print(f"  error {r['problem']} seed {r['seed']}: {r['error']}", flush=True)
            print(f"  {i}/{len(tasks)}, {time.monotonic() - started:.0f} s", flush=True)
    failed = any("error" in r for r in results)
    report = {
        "benchmark": "gp_cap",
        "settings": {
            "quick": args.quick,
            "caps": caps,
            "seeds": seeds,
            "evals": evals,
            "prefix": args.prefix,
            "checkpoints": checkpoints,
            "jobs": args.jobs,
            "wall_seconds": time.monotonic() - started,
            "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "environment": environment,
        "problems": aggregate(results, problems, caps, checkpoints),
        "errors": [
            {k: r[k] for k in ("problem", "seed", "error", "traceback")}
            for r in results
            if "error" in r
        ],
    }
    bench.write_json(out_dir / "gp_cap.json", report)
    (out_dir / "gp_cap.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
