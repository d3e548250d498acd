"""Simple regret of Bayesian search: opensweep vs W&B sweeps vs Optuna TPE/GP vs random.

Every method optimises the same problems (``bench.functions``) sequentially — one suggestion,
one result — for ``--evals`` evaluations, once per seed. Simple regret after k evaluations is the
best loss among the first k runs minus the known optimum. The report gives, per problem and
method, the median and inter-quartile range over seeds at 20/40/60 evaluations, and how opensweep
compares with the best anchor (W&B, Optuna TPE, Optuna GP) on each problem.

``python -m bench bayes_regret [--quick] [--seeds N] [--evals N] [--functions a,b]
[--methods m1,m2] [--jobs N] [--out DIR]``
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

import bench
from bench.anchors import (
    ALL_METHODS,
    ANCHORS,
    COLORS,
    LABELS,
    OURS,
    available_methods,
    make_suggester,
)
from bench.functions import PROBLEMS

CHECKPOINTS = (20, 40, 60)
QUICK_FUNCTIONS = ("branin", "hartmann6", "ml_like")


def run_sweep(problem_name: str, method: str, seed: int, evals: int) -> dict[str, Any]:
    """One sequential sweep; the losses in evaluation order and the time spent suggesting."""
    problem = PROBLEMS[problem_name]
    out: dict[str, Any] = {"problem": problem_name, "method": method, "seed": seed}
    try:
        suggester = make_suggester(method, problem.sweep_config, seed)
        losses: list[float] = []
        suggest_seconds: list[float] = []
        for _ in range(evals):
            started = time.perf_counter()
            params = suggester.suggest()
            suggest_seconds.append(time.perf_counter() - started)
            loss = float(problem.objective(params))
            losses.append(loss)
            suggester.observe(params, loss)
        out["losses"] = losses
        out["suggest_seconds"] = suggest_seconds
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc(limit=6)
    return out


def _quantiles(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    q25, q50, q75 = np.percentile(arr, [25, 50, 75])
    return {"median": float(q50), "q25": float(q25), "q75": float(q75)}


def _ratio(ours: float, anchor: float) -> float:
    """ours/anchor for regrets; 1.0 when both are (numerically) zero."""
    eps = 1e-12
    if anchor <= eps:
        return 1.0 if ours <= eps else math.inf
    return ours / anchor


def aggregate(
    results: list[dict[str, Any]], problems: list[str], methods: list[str], evals: int
) -> dict[str, Any]:
    """Per problem and method: regret quantiles at the checkpoints, curves, timing, errors."""
    checkpoints = [c for c in CHECKPOINTS if c <= evals] or [evals]
    out: dict[str, Any] = {}
    for name in problems:
        problem = PROBLEMS[name]
        per_method: dict[str, Any] = {}
        for method in methods:
            rows = sorted(
                (r for r in results if r["problem"] == name and r["method"] == method),
                key=lambda r: r["seed"],
            )
            ok = [r for r in rows if "losses" in r]
            errors = [{"seed": r["seed"], "error": r["error"]} for r in rows if "error" in r]
            entry: dict[str, Any] = {"seeds": [r["seed"] for r in ok], "errors": errors}
            if ok:
                best = np.minimum.accumulate(np.array([r["losses"] for r in ok]), axis=1)
                regret = np.maximum(best - problem.optimum, 0.0)
                entry["regret"] = {str(c): _quantiles(regret[:, c - 1]) for c in checkpoints}
                entry["regret_final_per_seed"] = regret[:, -1].tolist()
                entry["regret_curve_median"] = np.median(regret, axis=0).tolist()
                entry["regret_curve_q25"] = np.percentile(regret, 25, axis=0).tolist()
                entry["regret_curve_q75"] = np.percentile(regret, 75, axis=0).tolist()
                secs = np.concatenate([r["suggest_seconds"] for r in ok])
                entry["ms_per_suggestion_median"] = float(np.median(secs) * 1e3)
                entry["seconds_per_sweep_median"] = float(
                    np.median([sum(r["suggest_seconds"]) for r in ok])
                )
            per_method[method] = entry
        out[name] = {
            "title": problem.title,
            "optimum": problem.optimum,
            "in_issue": problem.in_issue,
            "dimension": problem.dimension,
            "checkpoints": checkpoints,
            "methods": per_method,
        }
    return out


def compare(functions: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """opensweep against each anchor at the last checkpoint: median ratios and per-seed wins."""
    anchors = [m for m in ANCHORS if m in methods]
    if OURS not in methods or not anchors:
        return {}
    table: dict[str, Any] = {}
    for name, fn in functions.items():
        last = str(fn["checkpoints"][-1])
        ours = fn["methods"][OURS]
        if "regret" not in ours:
            continue
        ours_med = ours["regret"][last]["median"]
        ours_seeds = dict(zip(ours["seeds"], ours["regret_final_per_seed"], strict=True))
        vs: dict[str, Any] = {}
        for anchor in anchors:
            a = fn["methods"][anchor]
            if "regret" not in a:
                continue
            a_seeds = dict(zip(a["seeds"], a["regret_final_per_seed"], strict=True))
            common = sorted(set(ours_seeds) & set(a_seeds))
            tol = 1e-9
            wins = sum(ours_seeds[s] < a_seeds[s] - tol for s in common)
            losses = sum(ours_seeds[s] > a_seeds[s] + tol for s in common)
            vs[anchor] = {
                "median": a["regret"][last]["median"],
                "ratio_ours_over_anchor": _ratio(ours_med, a["regret"][last]["median"]),
                "seed_wins": wins,
                "seed_ties": len(common) - wins - losses,
                "seed_losses": losses,
            }
        if not vs:
            continue
        best_anchor = min(vs, key=lambda m: vs[m]["median"])
        table[name] = {
            "at": int(last),
            "ours_median": ours_med,
            "best_anchor": best_anchor,
            "best_anchor_median": vs[best_anchor]["median"],
            "ratio_to_best_anchor": vs[best_anchor]["ratio_ours_over_anchor"],
            "no_worse_than_best_anchor": ours_med <= vs[best_anchor]["median"] + 1e-12,
            "vs": vs,
        }
    return table


def reuse_rows(
    paths: Sequence[Path],
    functions: dict[str, Any],
    methods: list[str],
    seeds: int,
    evals: int,
) -> dict[str, Any]:
    """Copy into ``functions`` the rows of methods not in ``methods`` from earlier reports.

    Each problem's rows come from the first report that holds it (so anchors measured on a
    problem added later can sit in a second file); every report must have used the same seeds
    and evaluations, and every problem must be in one of them. The rows keep their own timing
    figures. Returns what was reused, for the report.
    """
    import json

    olds = []
    for path in paths:
        old = json.loads(path.read_text())
        if old["settings"]["seeds"] != seeds or old["settings"]["evals"] != evals:
            raise ValueError(
                f"{path} used {old['settings']['seeds']} seeds x {old['settings']['evals']} "
                f"evaluations, this run {seeds} x {evals}"
            )
        olds.append((path, old))
    taken: set[str] = set()
    used: dict[str, tuple[Path, dict[str, Any]]] = {}
    for name, fn in functions.items():
        source = next(((p, o) for p, o in olds if name in o["functions"]), None)
        if source is None:
            raise ValueError(f"no report has results for problem {name!r}")
        used[str(source[0])] = source
        for method, entry in source[1]["functions"][name]["methods"].items():
            if method not in methods and "regret" in entry:
                fn["methods"][method] = entry
                taken.add(method)
        fn["methods"] = {m: fn["methods"][m] for m in ALL_METHODS if m in fn["methods"]}
    return {
        "from": sorted(used),
        "measured_at": sorted({o["settings"]["finished_at"] for _, o in used.values()}),
        "opensweep_commit_then": sorted(
            {str(o["environment"].get("opensweep_commit")) for _, o in used.values()}
        ),
        "methods": sorted(taken),
    }


def _listing(value: str | list[str]) -> str:
    """A reused report's field: one value (older reports) or a list of them."""
    return value if isinstance(value, str) else ", ".join(value)


def _cell(q: dict[str, float]) -> str:
    return f"{bench.fmt(q['median'])} [{bench.fmt(q['q25'])}, {bench.fmt(q['q75'])}]"


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        "# Bayesian search: simple regret",
        "",
        f"Median [25th, 75th percentile] simple regret over {s['seeds']} seeds "
        f"(lower is better; 0 = optimum found), sequential evaluation, "
        f"{s['evals']} evaluations per sweep. Measured {s['finished_at']} in one run of "
        f"`python -m bench bayes_regret{' --quick' if s['quick'] else ''}` "
        f"({s['wall_seconds']:.0f} s wall, {s['jobs']} worker processes, "
        f"1 thread each). {bench.code_note(report['environment'])}.",
        "",
    ]
    if report.get("reused"):
        r = report["reused"]
        lines += [
            f"Rows of {', '.join(LABELS[m] for m in r['methods'])} are reused from the "
            f"run(s) of {_listing(r['measured_at'])} (same seeds, evaluations and problems; "
            "those engines are seeded and do not depend on opensweep's code); only opensweep "
            "was re-measured. Their ms/suggestion figures come from that run.",
            "",
        ]
    if report["missing_methods"]:
        lines += ["**Not run** (unavailable here):", ""]
        lines += [f"- {LABELS[m]}: {why}" for m, why in report["missing_methods"].items()]
        lines.append("")
    cmp_ = report["comparison"]
    if cmp_:
        at = next(iter(cmp_.values()))["at"]
        lines += [
            f"## opensweep vs the anchors at {at} evaluations",
            "",
            "Ratio = opensweep's median regret / the anchor's (< 1: ours better). "
            "W/T/L = seeds where ours had lower / equal / higher regret than that anchor.",
            "",
            "| problem | ours | best anchor | ratio to best | no worse? | "
            + " | ".join(f"vs {LABELS[a]} ratio, W/T/L" for a in ANCHORS)
            + " |",
            "|---|---|---|---|---|" + "---|" * len(ANCHORS),
        ]
        for name, row in cmp_.items():
            cells = []
            for a in ANCHORS:
                v = row["vs"].get(a)
                cells.append(
                    "—"
                    if v is None
                    else f"{bench.fmt(v['ratio_ours_over_anchor'])}, "
                    f"{v['seed_wins']}/{v['seed_ties']}/{v['seed_losses']}"
                )
            tag = "" if report["functions"][name]["in_issue"] else " (extra)"
            lines.append(
                f"| {name}{tag} | {bench.fmt(row['ours_median'])} | "
                f"{LABELS[row['best_anchor']]} {bench.fmt(row['best_anchor_median'])} | "
                f"{bench.fmt(row['ratio_to_best_anchor'])} | "
                f"{'yes' if row['no_worse_than_best_anchor'] else '**no**'} | "
                + " | ".join(cells)
                + " |"
            )
        n_yes = sum(r["no_worse_than_best_anchor"] for r in cmp_.values())
        lines += ["", f"opensweep is no worse than the best anchor on {n_yes} of {len(cmp_)}.", ""]
    for name, fn in report["functions"].items():
        cps = fn["checkpoints"]
        extra = "" if fn["in_issue"] else " — not in the issue's list (generality check)"
        lines += [
            f"## {fn['title']}{extra}",
            "",
            f"Optimum {bench.fmt(fn['optimum'], 7)}. Plot: `bayes_regret_{name}.png`.",
            "",
            "| method | " + " | ".join(f"regret @{c}" for c in cps) + " | ms/suggestion (median) |",
            "|---|" + "---|" * (len(cps) + 1),
        ]
        for method, entry in fn["methods"].items():
            if "regret" not in entry:
                err = entry["errors"][0]["error"] if entry["errors"] else "not run"
                lines.append(f"| {LABELS[method]} | error: {err} |" + " |" * len(cps))
                continue
            cells = [_cell(entry["regret"][str(c)]) for c in cps]
            note = f" ({len(entry['errors'])} seeds failed)" if entry["errors"] else ""
            lines.append(
                f"| {LABELS[method]}{note} | "
                + " | ".join(cells)
                + f" | {bench.fmt(entry['ms_per_suggestion_median'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(report: dict[str, Any], out_dir: Path) -> list[str]:
    """One PNG per problem: median regret vs evaluations with the inter-quartile band."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    floor = 1e-6
    for name, fn in report["functions"].items():
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for method, entry in fn["methods"].items():
            if "regret_curve_median" not in entry:
                continue
            x = np.arange(1, len(entry["regret_curve_median"]) + 1)
            med = np.maximum(entry["regret_curve_median"], floor)
            lo = np.maximum(entry["regret_curve_q25"], floor)
            hi = np.maximum(entry["regret_curve_q75"], floor)
            color = COLORS.get(method)
            width = 2.4 if method == OURS else 1.4
            ax.plot(x, med, label=LABELS[method], color=color, linewidth=width)
            ax.fill_between(x, lo, hi, color=color, alpha=0.15)
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel(f"simple regret (median, IQR band; floor {floor:g})")
        ax.set_title(f"{fn['title']}, {report['settings']['seeds']} seeds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"bayes_regret_{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path.name)
    return written


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench bayes_regret", description=__doc__)
    p.add_argument("--quick", action="store_true", help="3 seeds, 3 problems, 40 evaluations")
    p.add_argument("--seeds", type=int, help="number of seeds (default 10; quick 3)")
    p.add_argument("--evals", type=int, help="evaluations per sweep (default 60; quick 40)")
    p.add_argument("--functions", help=f"comma list from: {', '.join(PROBLEMS)}")
    p.add_argument("--methods", help=f"comma list from: {', '.join(ALL_METHODS)}")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--reuse",
        metavar="JSON[,JSON...]",
        help="take the rows of methods not run now from these earlier bayes_regret.json files "
        "(same seeds and evaluations; each problem from the first file that has it): the "
        "anchors' results do not depend on opensweep's code, so re-measuring opensweep alone "
        "is enough after a change to it",
    )
    p.add_argument("--out", help="output directory (default bench/results[/quick])")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environment = bench.environment()  # before the run: the code as it was when measured
    seeds = args.seeds or (3 if args.quick else 10)
    evals = args.evals or (40 if args.quick else 60)
    problems = (
        args.functions.split(",")
        if args.functions
        else list(QUICK_FUNCTIONS if args.quick else PROBLEMS)
    )
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        print(f"unknown problems: {', '.join(unknown)}", file=sys.stderr)
        return 2
    wanted = args.methods.split(",") if args.methods else list(ALL_METHODS)
    bad = [m for m in wanted if m not in ALL_METHODS]
    if bad:
        print(f"unknown methods: {', '.join(bad)}", file=sys.stderr)
        return 2
    methods, missing = available_methods(wanted)
    for m, why in missing.items():
        print(f"bayes_regret: skipping {LABELS[m]}: {why}", flush=True)
    out_dir = bench.results_dir(args.quick, args.out)

    # Slowest methods first so the pool's tail is short.
    order = {m: i for i, m in enumerate((OURS, "optuna_gp", "wandb", "optuna_tpe", "random"))}
    tasks = [
        (p, m, s, evals)
        for m in sorted(methods, key=lambda m: order.get(m, 99))
        for p in problems
        for s in range(seeds)
    ]
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    print(
        f"bayes_regret: {len(tasks)} sweeps ({len(problems)} problems x {len(methods)} methods "
        f"x {seeds} seeds, {evals} evaluations) on {args.jobs} processes",
        flush=True,
    )
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_sweep, *t) for t in tasks]
        for i, fut in enumerate(as_completed(futures), 1):
            r = fut.result()
            results.append(r)
            if "error" in r:
                print(
                    f"  error {r['problem']} {r['method']} seed {r['seed']}: {r['error']}",
                    flush=True,
                )
            if i % max(1, len(tasks) // 20) == 0 or i == len(tasks):
                print(f"  {i}/{len(tasks)} sweeps, {time.monotonic() - started:.0f} s", flush=True)
    wall = time.monotonic() - started

    functions = aggregate(results, problems, methods, evals)
    reused: dict[str, Any] = {}
    if args.reuse:
        try:
            reused = reuse_rows(
                [Path(p) for p in args.reuse.split(",")], functions, methods, seeds, evals
            )
        except (OSError, ValueError, KeyError) as exc:
            print(f"bayes_regret: cannot reuse {args.reuse}: {exc}", file=sys.stderr)
            return 2
    all_methods = [m for m in ALL_METHODS if m in methods or m in reused.get("methods", [])]
    report: dict[str, Any] = {
        "benchmark": "bayes_regret",
        "settings": {
            "quick": args.quick,
            "seeds": seeds,
            "evals": evals,
            "jobs": args.jobs,
            "wall_seconds": wall,
            "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "anchor_settings": {
                "wandb": "sweeps.next_run, method bayes, numpy global RNG reseeded per suggestion",
                "optuna_tpe": "TPESampler(seed) defaults (10 random startup runs)",
                "optuna_gp": "GPSampler(seed) defaults (10 random startup runs)",
                "random": "Optuna RandomSampler(seed)",
            },
        },
        "environment": environment,
        "missing_methods": {m: why for m, why in missing.items() if m not in reused},
        "reused": reused,
        "comparison": compare(functions, all_methods),
        "functions": functions,
    }
    name = "bayes_regret"
    bench.write_json(out_dir / f"{name}.json", report)
    (out_dir / f"{name}.md").write_text(markdown(report) + "\n")
    plots = plot(report, out_dir)
    print(
        f"bayes_regret: wrote {out_dir / name}.json/.md and {len(plots)} plots in {wall:.0f} s",
        flush=True,
    )
    print(markdown(report))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
