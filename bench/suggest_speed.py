"""Milliseconds per suggestion with 10, 100 and 1,000 finished runs.

For each problem, a history of N finished runs (random points of the space, fixed seed) is
handed to each engine without timing. Then the engine is driven as in a real sequential sweep:
suggest, evaluate, record the result, suggest again. The first suggestion (cold: nothing cached)
is reported on its own; the figure compared is the median over the next ``--reps`` suggestions
(at N+1, N+2, ... finished runs), which is what each suggestion costs once a sweep is going,
including any reuse of work between suggestions an engine does.

Each anchor is timed in a pair with opensweep: the two interleaved (round r asks each for its
r-th suggestion, one engine working at a time), each in a worker process of its own, with one
thread for the numeric libraries, so a busy spell of the shared machine slows both alike,
where timing one engine after the other let it fall on one of them.

Pairs, not every engine in one round: an engine's time depends on what ran between its
suggestions (another engine's memory traffic evicts its caches), and a round of all four put
W&B's sklearn and Optuna's torch between every two of ours (+1-2 ms on our ~7, ~0 on W&B's
~70). In a pair each engine follows only the other, which is the comparison each ratio
states. Our own time is reported per pair and overall. Own processes, because engines in one
process share its heap (see :func:`time_methods`); ``--same-process`` keeps them in this one.

``python -m bench suggest_speed [--quick] [--sizes 10,100,1000] [--reps N]
[--functions a,b] [--methods m1,m2] [--same-process] [--out DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

import numpy as np

import bench
from bench.anchors import (
    ALL_METHODS,
    LABELS,
    OURS,
    RANDOM,
    OptunaSuggester,
    Params,
    available_methods,
    make_suggester,
)
from bench.functions import PROBLEMS

SIZES = (10, 100, 1000)
FUNCTIONS = ("hartmann6", "ml_like")


def random_history(problem_name: str, n: int, seed: int) -> list[tuple[Params, float]]:
    """``n`` finished runs at random points of the problem's space, with their losses."""
    problem = PROBLEMS[problem_name]
    sampler = OptunaSuggester(problem.sweep_config, seed, "random")
    history = []
    for _ in range(n):
        params = sampler.suggest()
        loss = float(problem.objective(params))
        sampler.observe(params, loss)
        history.append((params, loss))
    return history


SLOW_BUDGET_S = 20.0
"""A method that has spent this long on its timed suggestions at one size stops after
:data:`MIN_REPS` of them (Optuna's GP takes seconds per suggestion at 1,000 runs)."""
MIN_REPS = 5


class _Engine:
    """One method's sweep, driven one suggestion at a time: in this process, or in a worker
    process of its own (:func:`_serve`) so that no engine shares a heap with another."""

    def __init__(self, method: str, problem_name: str, history: list[tuple[Params, float]],
                 seed: int, own_process: bool) -> None:
        self.method = method
        self._conn: Any = None
        self._process: Any = None
        self._suggester: Any = None
        self._problem = PROBLEMS[problem_name]
        if own_process:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            self._conn, theirs = context.Pipe()
            self._process = context.Process(
                target=_serve, args=(theirs, method, problem_name, history, seed), daemon=True)
            self._process.start()
            theirs.close()
            self._answer()  # ready, or the error that stopped it
        else:
            self._suggester = make_suggester(method, self._problem.sweep_config, seed)
            self._suggester.preload(history)

    def _answer(self) -> Any:
        status, value = self._conn.recv()
        if status == "error":
            raise RuntimeError(value)
        return value

    def step(self) -> float:
        """Milliseconds the engine took for its next suggestion (then the result is recorded)."""
        if self._conn is not None:
            self._conn.send("step")
            return float(self._answer())
        started = time.perf_counter()
        params = self._suggester.suggest()
        elapsed = (time.perf_counter() - started) * 1e3
        self._suggester.observe(params, float(self._problem.objective(params)))
        return elapsed

    def close(self) -> None:
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._process.join(timeout=30)
            if self._process.is_alive():
                self._process.kill()
            self._conn.close()
            self._process = None


def _serve(conn: Any, method: str, problem_name: str, history: list[tuple[Params, float]],
           seed: int) -> None:
    """A worker process's loop: one engine, one sweep, a suggestion per "step" received."""
    try:
        engine = _Engine(method, problem_name, history, seed, own_process=False)
        conn.send(("ready", None))
        while conn.recv() == "step":
            conn.send(("ok", engine.step()))
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def time_methods(
    methods: list[str], problem_name: str, history: list[tuple[Params, float]], reps: int,
    seed: int, own_processes: bool = True,
) -> dict[str, dict[str, Any]]:
    """Every method driven through its own sweep from the same ``history``, interleaved: round
    ``r`` asks each method for its ``r``-th suggestion in turn (in an order that rotates), so a
    slow or busy spell of this shared machine falls on all of them alike instead of on
    whichever ran then. The ratio of two methods is also taken round by round (``paired``).

    ``own_processes``: each method in a worker process of its own, timed there, one at a time.
    In one process the engines share one heap: after W&B's engine (a 1,000 x 1,000 kernel
    matrix per suggestion) had grown and trimmed it, our next suggestion took ~120 page faults
    where it takes ~2 alone, which no deployment of either engine has."""
    out: dict[str, dict[str, Any]] = {}
    engines: dict[str, _Engine] = {}
    timings: dict[str, list[float]] = {}
    for m in methods:
        try:
            engines[m] = _Engine(m, problem_name, history, seed, own_processes)
            timings[m] = []
        except Exception as exc:
            out[m] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        _run_rounds(engines, timings, out, reps)
    finally:
        for engine in engines.values():
            engine.close()
    for m, t in timings.items():
        if m in out:
            continue
        out[m] = _summary(t[0], t[1:])
    return out


def _summary(cold_ms: float, samples_ms: list[float]) -> dict[str, Any]:
    """A method's figures: its first (cold) suggestion and the steady ones after it."""
    return {
        "cold_ms": cold_ms,
        "median_ms": float(np.median(samples_ms)),
        "min_ms": float(np.min(samples_ms)),
        "max_ms": float(np.max(samples_ms)),
        "samples_ms": samples_ms,
    }


def _run_rounds(engines: dict[str, _Engine], timings: dict[str, list[float]],
                out: dict[str, dict[str, Any]], reps: int) -> None:
    active = dict(engines)
    for r in range(reps + 1):
        # The order rotates round by round, so each method follows each other one equally
        # often: the one after a slow, memory-hungry method starts with colder caches.
        order = list(active)
        order = order[r % len(order):] + order[: r % len(order)] if order else order
        for m in order:
            try:
                timings[m].append(active[m].step())
            except Exception as exc:
                out[m] = {"error": f"{type(exc).__name__}: {exc}"}
                del active[m]
                continue
            spent = sum(timings[m][1:]) / 1e3
            if r >= MIN_REPS and spent > SLOW_BUDGET_S:
                del active[m]


def time_in_pairs(
    methods: list[str], problem_name: str, history: list[tuple[Params, float]], reps: int,
    seed: int, own_processes: bool = True,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Each anchor of ``methods`` timed by :func:`time_methods` in a pair with ours (a fresh
    sweep of ours per pair, from the same history and seed). Returns each method's results
    (ours: every pair's samples together) and, per anchor, our results in its pair."""
    anchors = [m for m in methods if m != OURS]
    if OURS not in methods or not anchors:
        return time_methods(methods, problem_name, history, reps, seed, own_processes), {}
    results: dict[str, dict[str, Any]] = {}
    ours_by_pair: dict[str, dict[str, Any]] = {}
    for anchor in anchors:
        pair = time_methods([OURS, anchor], problem_name, history, reps, seed, own_processes)
        results[anchor] = pair[anchor]
        ours_by_pair[anchor] = pair[OURS]
    timed = [r for r in ours_by_pair.values() if "samples_ms" in r]
    if not timed:
        results[OURS] = next(iter(ours_by_pair.values()))
        return results, ours_by_pair
    results[OURS] = _summary(timed[0]["cold_ms"], [t for r in timed for t in r["samples_ms"]])
    return results, ours_by_pair


def paired_ratio(anchor: list[float], ours: list[float]) -> float:
    """The median over rounds of anchor time / our time in the same round."""
    k = min(len(anchor), len(ours))
    return float(np.median(np.array(anchor[:k]) / np.array(ours[:k])))


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    methods = s["methods"]
    lines = [
        "# Milliseconds per suggestion",
        "",
        f"Median of {s['reps']} consecutive suggestions after N finished runs (the history "
        f"grows by one run per suggestion, as in a real sweep; a method that spent over "
        f"{SLOW_BUDGET_S:g} s stops after {MIN_REPS}); cold = the first suggestion with nothing "
        f"cached. Each anchor is timed in a pair with opensweep, the two interleaved (one "
        f"suggestion each per round), "
        f"{'each in a process of its own' if s.get('own_processes') else 'in one process'}, "
        f"1 thread; a ratio is of the medians in "
        f"that pair, and in brackets the median of the per-round ratios. Our column is over "
        f"all pairs, and \"ours beside\" gives our median in each pair. "
        f"Measured {s['finished_at']} "
        f"with `python -m bench suggest_speed{' --quick' if s['quick'] else ''}` "
        f"({s['wall_seconds']:.0f} s wall). {bench.code_note(report['environment'])}.",
        "",
    ]
    if report["missing_methods"]:
        lines += [f"- not run: {LABELS[m]}: {why}" for m, why in report["missing_methods"].items()]
        lines.append("")
    others = [m for m in methods if m not in (OURS, RANDOM)]
    head = "| problem | N | " + " | ".join(f"{LABELS[m]} ms (cold)" for m in methods)
    if OURS in methods:
        head += " | " + " | ".join(f"{LABELS[m]} / ours" for m in others)
    lines += [
        head + " |",
        "|---|---|" + "---|" * (len(methods) + (len(others) if OURS in methods else 0)),
    ]
    for row in report["rows"]:
        cells = []
        for m in methods:
            r = row["methods"].get(m)
            cells.append(
                "error"
                if r is None or "error" in r
                else f"{bench.fmt(r['median_ms'])} ({bench.fmt(r['cold_ms'])})"
            )
        if OURS in methods:
            for m in others:
                ratio = row["ratios_over_ours"].get(m)
                paired = row.get("paired_ratios_over_ours", {}).get(m)
                cells.append(
                    "—" if ratio is None else f"{bench.fmt(ratio, 2)}x"
                    + ("" if paired is None else f" ({bench.fmt(paired, 2)}x)")
                )
        lines.append(f"| {row['problem']} | {row['n']} | " + " | ".join(cells) + " |")
    lines.append("")
    beside = [
        f"{row['problem']} N={row['n']}: "
        + ", ".join(f"{bench.fmt(r['median_ms'])} beside {LABELS[m]}"
                    for m, r in row.get("ours_by_pair", {}).items() if "median_ms" in r)
        for row in report["rows"] if row.get("ours_by_pair")
    ]
    if beside:
        lines += ["Ours beside each anchor (median ms in that pair):", ""]
        lines += [f"- {line}" for line in beside]
        lines.append("")
    if OURS in methods:
        lines.append("Ratios > 1 mean opensweep is faster (anchor time / opensweep time).")
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench suggest_speed", description=__doc__)
    p.add_argument("--quick", action="store_true", help="sizes 10,100; 3 repetitions")
    p.add_argument("--sizes", help="comma list of history sizes (default 10,100,1000)")
    p.add_argument("--reps", type=int, help="timed suggestions per size (default 15; quick 3)")
    p.add_argument("--functions", help=f"comma list (default {','.join(FUNCTIONS)})")
    p.add_argument("--methods", help=f"comma list from: {', '.join(ALL_METHODS)}")
    p.add_argument("--same-process", action="store_true",
                   help="run every engine in this process (default: each in its own)")
    p.add_argument("--out", help="output directory (default bench/results[/quick])")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environment = bench.environment()  # before the run: the code as it was when measured
    sizes = (
        [int(x) for x in args.sizes.split(",")]
        if args.sizes
        else ([10, 100] if args.quick else list(SIZES))
    )
    reps = args.reps or (3 if args.quick else 15)
    problems = args.functions.split(",") if args.functions else list(FUNCTIONS)
    if any(p not in PROBLEMS for p in problems):
        print(f"unknown problem in {problems}", file=sys.stderr)
        return 2
    wanted = args.methods.split(",") if args.methods else [m for m in ALL_METHODS if m != RANDOM]
    methods, missing = available_methods(wanted)
    for m, why in missing.items():
        print(f"suggest_speed: skipping {LABELS[m]}: {why}", flush=True)
    out_dir = bench.results_dir(args.quick, args.out)
    started = time.monotonic()
    rows = []
    failed = False
    for problem_name in problems:
        for n in sizes:
            history = random_history(problem_name, n, seed=1234 + n)
            row: dict[str, Any] = {"problem": problem_name, "n": n, "methods": {}}
            results, ours_by_pair = time_in_pairs(
                methods, problem_name, history, reps, seed=7,
                own_processes=not args.same_process)
            row["ours_by_pair"] = ours_by_pair
            for m in methods:
                r = results[m]
                failed = failed or "error" in r
                row["methods"][m] = r
                shown = r.get("median_ms", float("nan"))
                print(
                    f"  {problem_name} N={n} {m}: {shown:.1f} ms {r.get('error', '')}", flush=True
                )
            overall = row["methods"].get(OURS, {})
            # Each ratio against our time in the same pair (the overall one without pairs).
            ours_in = {m: ours_by_pair.get(m, overall) for m in methods if m != OURS}
            row["ratios_over_ours"] = {
                m: row["methods"][m]["median_ms"] / ours["median_ms"]
                for m, ours in ours_in.items()
                if "median_ms" in ours and "median_ms" in row["methods"][m]
            }
            row["paired_ratios_over_ours"] = {
                m: paired_ratio(row["methods"][m]["samples_ms"], ours["samples_ms"])
                for m, ours in ours_in.items()
                if "samples_ms" in ours and "samples_ms" in row["methods"][m]
            }
            for m, ours in ours_by_pair.items():
                if "median_ms" in ours:
                    print(f"  {problem_name} N={n} ours beside {m}: {ours['median_ms']:.1f} ms",
                          flush=True)
            rows.append(row)
    report = {
        "benchmark": "suggest_speed",
        "settings": {
            "quick": args.quick,
            "sizes": sizes,
            "reps": reps,
            "methods": methods,
            "own_processes": not args.same_process,
            "wall_seconds": time.monotonic() - started,
            "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "environment": environment,
        "missing_methods": missing,
        "rows": rows,
    }
    bench.write_json(out_dir / "suggest_speed.json", report)
    (out_dir / "suggest_speed.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
