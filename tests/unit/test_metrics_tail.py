"""The metrics file tail: JSON lines in, numbered records out; bad lines reported once, skipped."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agent import metrics
from agent.metrics import LineParser, MetricsTail, numeric_value


def _tail(path: Path) -> tuple[MetricsTail, list[str]]:
    warnings: list[str] = []
    return MetricsTail(path, warnings.append, clock=lambda: 123.0), warnings


def test_missing_file_yields_nothing_until_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    tail, warnings = _tail(path)
    assert tail.poll() == []
    path.write_text('{"loss": 1.5}\n')
    [record] = tail.poll()
    assert (record.seq, record.step, record.values, record.time) == (0, 0, {"loss": 1.5}, 123.0)
    assert warnings == []


def test_records_are_numbered_from_zero_across_polls(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    tail, _ = _tail(path)
    assert [r.seq for r in tail.poll()] == [0, 1]
    with open(path, "a") as f:
        f.write('{"a": 3}\n')
    assert [(r.seq, r.values["a"]) for r in tail.poll()] == [(2, 3.0)]
    assert tail.records_read == 3


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"loss": 0.')
    tail, warnings = _tail(path)
    assert tail.poll() == []
    with open(path, "a") as f:
        f.write('25}\n')
    [record] = tail.poll()
    assert record.values == {"loss": 0.25}
    assert warnings == []


def test_malformed_line_is_reported_once_with_its_number_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    tail, warnings = _tail(path)
    records = tail.poll() + tail.poll()
    assert [r.values["a"] for r in records] == [1.0, 2.0]
    assert [r.seq for r in records] == [0, 1]
    assert len(warnings) == 1
    assert "line 2" in warnings[0] and "skipped" in warnings[0]


def test_non_object_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("[1, 2]\n")
    tail, warnings = _tail(path)
    assert tail.poll() == []
    assert warnings == ["metrics line 1 is a JSON list, not an object; skipped"]


def test_blank_lines_are_ignored_but_counted_for_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('\n\n{oops\n')
    tail, warnings = _tail(path)
    assert tail.poll() == []
    assert "line 3" in warnings[0]


def test_step_comes_from_integral_underscore_step(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"_step": 10, "x": 1}\n{"_step": 11.0, "x": 2}\n{"_step": 1.5, "x": 3}\n')
    tail, _ = _tail(path)
    records = tail.poll()
    assert [(r.seq, r.step) for r in records] == [(0, 10), (1, 11), (2, 2)]
    assert all("_step" not in r.values for r in records)


def test_nested_objects_flatten_with_dots_and_booleans_become_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"val": {"loss": 1, "top": {"acc": 0.5}}, "ok": true}\n')
    tail, _ = _tail(path)
    [record] = tail.poll()
    assert record.values == {"val.loss": 1.0, "val.top.acc": 0.5, "ok": 1.0}


def test_non_finite_values_are_forwarded(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": NaN, "b": "Infinity", "c": -Infinity}\n')
    tail, warnings = _tail(path)
    [record] = tail.poll()
    assert math.isnan(record.values["a"])
    assert record.values["b"] == math.inf and record.values["c"] == -math.inf
    assert warnings == []


def test_non_numeric_value_is_dropped_with_one_warning_per_name(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"name": "x", "a": 1}\n{"name": "y", "a": 2}\n')
    tail, warnings = _tail(path)
    records = tail.poll()
    assert [r.values for r in records] == [{"a": 1.0}, {"a": 2.0}]
    assert len(warnings) == 1 and "'name'" in warnings[0] and "line 1" in warnings[0]


def test_close_parses_an_unterminated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}')
    tail, _ = _tail(path)
    assert len(tail.poll()) == 1
    [last] = tail.close()
    assert last.values == {"a": 2.0} and last.seq == 1


def test_close_reports_a_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": ')
    tail, warnings = _tail(path)
    assert len(tail.close()) == 1
    assert len(warnings) == 1 and "line 2" in warnings[0]


def test_overlong_line_is_skipped_without_losing_the_next(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_LINE_BYTES", 64)
    monkeypatch.setattr(metrics, "MAX_READ_BYTES", 16)
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"pad": "' + "x" * 200 + '"}\n{"a": 3}\n')
    tail, warnings = _tail(path)
    records = tail.drain()
    assert [r.values for r in records] == [{"a": 1.0}, {"a": 3.0}]
    assert len(warnings) == 1 and "line 2" in warnings[0] and "longer than" in warnings[0]


def test_drain_reads_more_than_one_poll_worth(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_READ_BYTES", 100)
    path = tmp_path / "m.jsonl"
    path.write_text("".join(f'{{"i": {i}}}\n' for i in range(500)))
    tail, _ = _tail(path)
    assert [r.values["i"] for r in tail.drain()] == [float(i) for i in range(500)]


def test_reports_are_capped() -> None:
    warnings: list[str] = []
    parser = LineParser(warnings.append)
    for n in range(1, 100):
        parser.parse(b"nope", n, 0.0)
    assert len(warnings) == metrics.MAX_REPORTS + 1
    assert warnings[-1].startswith("further problems")
    assert parser.suppressed == 99 - metrics.MAX_REPORTS


@pytest.mark.parametrize(("value", "expected"), [
    (True, 1.0), (False, 0.0), (3, 3.0), (2.5, 2.5), ("-Infinity", -math.inf), ("x", None),
    (None, None), ([1], None), (10**400, math.inf), (-(10**400), -math.inf),
])
def test_numeric_value(value: object, expected: float | None) -> None:
    assert numeric_value(value) == expected


def test_nan_string_is_nan() -> None:
    result = numeric_value("NaN")
    assert result is not None and math.isnan(result)


def test_a_rewritten_file_is_reported_once_and_followed_from_its_new_end(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    tail, warnings = _tail(path)
    assert len(tail.poll()) == 2
    path.write_text('{"a": 9}\n')  # opened with "w": truncated, then written
    assert tail.poll() == []
    assert len(warnings) == 1 and "open it with 'a'" in warnings[0]
    with open(path, "a") as f:
        f.write('{"a": 3}\n')
    assert [(r.seq, r.values) for r in tail.poll()] == [(2, {"a": 3.0})]
    path.write_text("")
    assert tail.poll() == [] and len(warnings) == 1


def test_a_record_wider_than_the_controller_accepts_is_cut_with_one_warning(
        tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    wide = {f"m{i:04d}": i for i in range(metrics.MAX_VALUES_PER_RECORD + 5)}
    path.write_text(json.dumps(wide) + "\n" + json.dumps(wide) + "\n")
    tail, warnings = _tail(path)
    records = tail.poll()
    assert [len(r.values) for r in records] == [metrics.MAX_VALUES_PER_RECORD] * 2
    assert "m0000" in records[0].values and "m1004" not in records[0].values
    assert len(warnings) == 1 and "1005 values" in warnings[0]
