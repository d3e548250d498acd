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
    metrics = [(seq, row[3]) for seq, row in enumerate(rows, 1)
               if row[0] == ev.MetricsLogged.TYPE and row[1] == ev.MetricsLogged.VERSION]
    others = [(seq, *row) for seq, row in enumerate(rows, 1)
              if not (row[0] == ev.MetricsLogged.TYPE and row[1] == ev.MetricsLogged.VERSION)]
    joined = (len(metrics), ",".join(str(seq) for seq, _ in metrics) if metrics else None,
              b",".join(data for _, data in metrics) if metrics else None)
    chunk = _lean_chunk(0, len(rows), [joined], others)
    return parse_rows(rows, range(1, len(rows) + 1)) if chunk is None else chunk
