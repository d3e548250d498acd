"""Build a large, valid event log, and time how long the controller takes to load it.

Run in its own process by ``bench.controller`` so each measurement starts cold (no state
left over from building the log), as a restarted controller does:

- ``python -m bench._replay build DB --events N``: writes N events through the real
  :class:`~controller.store.EventStore` (group commit, WAL, synchronous=FULL). The log looks
  like a busy controller's: sweeps, agents, and for each run ``RunAssigned``, ``RunStarted``,
  several ``MetricsLogged`` batches and ``RunEnded``. Every event is folded while building, so
  a log the fold would reject can never be measured.
- ``python -m bench._replay open DB [--snapshot]``: times ``Controller.open`` (read the newest
  snapshot if any, replay the events after it, fold), then the floor (:func:`read_floor`) and,
  with ``--snapshot``, writes a snapshot and times that too. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

SWEEPS = 100
AGENTS_PER_SWEEP = 8
METRIC_BATCHES_PER_RUN = 8
RECORDS_PER_BATCH = 5

_CONFIG = {
    "method": "random",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        "batch_size": {"values": [16, 32, 64, 128]},
        "optimizer": {"values": ["adam", "sgd", "adamw"]},
        "dropout": {"min": 0.0, "max": 0.5},
    },
}


def events(total: int, start_time: float) -> Iterator[Any]:
    """``total`` events of a plausible controller history, in log order, deterministic."""
    import random

    from controller.core import events as ev
    from controller.core.config import parse_config
    from controller.core.random_search import sample_random
    from controller.core.state import derive_seed, run_id_for

    config = parse_config(_CONFIG)
    rng = random.Random(20261123)
    t = start_time
    emitted = 0
    sweep_ids = [f"bench{i:03d}" for i in range(SWEEPS)]
    next_index = dict.fromkeys(sweep_ids, 0)
    for n, sid in enumerate(sweep_ids):
        yield ev.SweepCreated(
            time=t,
            sweep_id=sid,
            config=config.raw,
            seed=n,
            method="random",
            name=f"bench {n}",
            grid_size=None,
            run_cap=None,
            metric_name="loss",
            metric_goal="minimize",
            metric_target=None,
            warnings=[],
        )
        for a in range(AGENTS_PER_SWEEP):
            yield ev.AgentRegistered(
                time=t, sweep_id=sid, agent_id=f"{sid}-agent-{a}", hostname="host", pid=1000 + a
            )
        emitted += 1 + AGENTS_PER_SWEEP
    per_run = 3 + METRIC_BATCHES_PER_RUN
    while emitted + per_run <= total:
        sid = sweep_ids[rng.randrange(SWEEPS)]
        index = next_index[sid]
        next_index[sid] = index + 1
        run_id = run_id_for(sid, index)
        seed = derive_seed(sweep_ids.index(sid), index)
        params = config.space.nest(sample_random(config.space, seed))
        agent = f"{sid}-agent-{index % AGENTS_PER_SWEEP}"
        t += 0.01
        yield ev.RunAssigned(
            time=t,
            sweep_id=sid,
            run_id=run_id,
            run_index=index,
            agent_id=agent,
            params=params,
            grid_index=None,
            suggestion_seed=seed,
        )
        yield ev.RunStarted(time=t, sweep_id=sid, run_id=run_id, pid=4242)
        loss = 2.3
        step = 0
        for _ in range(METRIC_BATCHES_PER_RUN):
            records = []
            for _ in range(RECORDS_PER_BATCH):
                loss *= 0.97 + 0.02 * rng.random()
                records.append(
                    {
                        "seq": step,
                        "step": step,
                        "values": {"loss": loss, "acc": 1 - loss / 3},
                        "time": t,
                    }
                )
                step += 1
            t += 0.01
            yield ev.MetricsLogged.from_records(time=t, sweep_id=sid, run_id=run_id,
                                                records=records)
        yield ev.RunEnded(
            time=t,
            sweep_id=sid,
            run_id=run_id,
            state="finished",
            exit_code=0,
            reason="exit status 0",
        )
        emitted += per_run
    # Pad with heartbeat-free, harmless events to land exactly on ``total``.
    pad_sweep = sweep_ids[0]
    while emitted < total:
        yield ev.AgentRegistered(
            time=t, sweep_id=pad_sweep, agent_id=f"{pad_sweep}-agent-0", hostname="host", pid=1000
        )
        emitted += 1


async def build(db: str, total: int, chunk: int = 20_000) -> dict[str, Any]:
    from controller.core.state import State, apply
    from controller.store import EventStore

    store = await EventStore.open(db)
    if store.last_seq:
        await store.close()
        raise SystemExit(f"{db} already holds {store.last_seq} events; give a new path")
    state = State()
    started = time.perf_counter()
    last: asyncio.Future[int] | None = None
    for i, event in enumerate(events(total, start_time=1.7e9), 1):
        apply(state, event)  # the fold must accept it, or the benchmark is meaningless
        _, last = store.enqueue(event)
        if i % chunk == 0:
            await last
    if last is not None:
        await last
    seconds = time.perf_counter() - started
    commits = store.commits
    await store.close()
    return {
        "events": state.seq,
        "sweeps": len(state.sweeps),
        "runs": len(state.runs),
        "build_seconds": seconds,
        "commits": commits,
    }


async def open_once(db: str, snapshot: bool) -> dict[str, Any]:
    from controller.service.controller import Controller

    started = time.perf_counter()
    cpu = time.process_time()
    controller = await Controller.open(db)
    opened = time.perf_counter() - started
    out: dict[str, Any] = {
        "open_seconds": opened,
        "open_cpu_seconds": time.process_time() - cpu,
        "seq": controller.state.seq,
        "runs": len(controller.state.runs),
    }
    await controller.close(snapshot=False)
    out["floor_seconds"] = read_floor(db)
    out["scan_seconds"] = read_scan(db)
    if snapshot:
        controller = await Controller.open(db)
        started = time.perf_counter()
        await controller.snapshot()
        out["snapshot_write_seconds"] = time.perf_counter() - started
        await controller.close(snapshot=False)
    return out


def read_floor(db: str) -> float:
    """Seconds to read every event row with plain sqlite3 and ``json.loads`` its data.

    The least any replay of this log format pays on this machine, measured in the same process
    right after the real one: ``open_seconds / floor_seconds`` is the replay's overhead beyond
    reading and parsing, a ratio that travels between machines better than seconds do.
    """
    import sqlite3

    started = time.perf_counter()
    conn = sqlite3.connect(db)
    loads = json.loads
    for (data,) in conn.execute("SELECT data FROM events ORDER BY seq"):
        loads(data)
    conn.close()
    return time.perf_counter() - started


def read_scan(db: str) -> float:
    """Seconds to fetch every event row with plain sqlite3 and parse nothing: what reading the
    log costs before any decoding, the hard floor of a replay that reads every event."""
    import sqlite3

    started = time.perf_counter()
    conn = sqlite3.connect(db)
    cursor = conn.execute("SELECT seq, time, type, version, data FROM events ORDER BY seq")
    while cursor.fetchmany(5000):
        pass
    conn.close()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._replay", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("db")
    b.add_argument("--events", type=int, default=1_000_000)
    o = sub.add_parser("open")
    o.add_argument("db")
    o.add_argument("--snapshot", action="store_true", help="then write a snapshot, timed")
    args = p.parse_args(argv)
    if args.command == "build":
        result = asyncio.run(build(args.db, args.events))
    else:
        result = asyncio.run(open_once(args.db, args.snapshot))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
