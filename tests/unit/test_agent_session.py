"""Pieces of the agent's session that need no controller: batching and run directory names."""

from __future__ import annotations

import pytest

from agent import session
from agent.session import metric_batches, run_dir_name
from opensweep.v1 import sweeps_pb2


def _record(seq: int, width: int = 1) -> sweeps_pb2.MetricRecord:
    return sweeps_pb2.MetricRecord(seq=seq, step=seq,
                                   values={f"metric_{i:05d}": float(i) for i in range(width)})


def test_batches_keep_order_and_respect_the_record_count() -> None:
    records = [_record(i) for i in range(1201)]
    batches = list(metric_batches(records))
    assert [len(b) for b in batches] == [500, 500, 201]
    assert [r.seq for b in batches for r in b] == list(range(1201))


def test_batches_respect_the_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [_record(1000 + i, width=100) for i in range(50)]  # all the same size
    size = records[0].ByteSize()
    monkeypatch.setattr(session, "BATCH_BYTES", size * 8 + 1)
    batches = list(metric_batches(records))
    assert all(sum(r.ByteSize() for r in b) <= size * 8 + 1 for b in batches)
    assert [len(b) for b in batches] == [8] * 6 + [2]


def test_a_record_larger_than_the_budget_travels_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "BATCH_BYTES", 10)
    records = [_record(0, width=50), _record(1), _record(2)]
    assert [[r.seq for r in b] for b in metric_batches(records)] == [[0], [1], [2]]


def test_no_records_no_batches() -> None:
    assert list(metric_batches([])) == []


@pytest.mark.parametrize(("run_id", "name"), [
    ("k3v9x0qa-0001", "k3v9x0qa-0001"), ("../../etc", "_.._etc"), ("a/b", "a_b"), ("", "run"),
    ("...", "run"),
])
def test_run_dir_names_cannot_escape_the_run_root(run_id: str, name: str) -> None:
    assert run_dir_name(run_id) == name
