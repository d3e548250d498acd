"""Rows as the event store's replay reads them, without a database (for the fold's tests)."""

from __future__ import annotations

from typing import Any

from controller.core import events as ev
from controller.jsontext import dumps
from controller.store.eventlog import _lean_chunk, parse_rows


def replay_chunk(stored: list[tuple[str, int, float, dict[str, Any]]]) -> list[Any]:
    """What ``EventStore.read_stored(lean=True)`` yields for events stored as ``(type,
    version, time, data)`` at seqs 1..n, read as one range: the results its two queries give
    (a current-version MetricsLogged's seq and data joined by commas; the other rows), then
    the rows one by one when the joined data does not parse lean."""
    rows = [(type_name, version, time, dumps(data).encode())
            for type_name, version, time, data in stored]
    metrics: dict[int, list[tuple[int, bytes]]] = {}
    others = []
    for seq, (type_name, version, time, data) in enumerate(rows, 1):
        if type_name == ev.MetricsLogged.TYPE and version in (1, ev.MetricsLogged.VERSION):
            metrics.setdefault(version, []).append((seq, data))
        else:
            others.append((seq, type_name, version, time, data))
    joined = [(version, len(group), ",".join(str(seq) for seq, _ in group),
               b",".join(data for _, data in group)) for version, group in metrics.items()]
    chunk = _lean_chunk(0, len(rows), joined, others)
    return parse_rows(rows, range(1, len(rows) + 1)) if chunk is None else chunk
