"""Reading a run's metrics file: JSON lines appended by the program, turned into metric records.

The program (in any language) appends one JSON object per line to ``$OPENSWEEP_METRICS``. The
agent reads what has been appended since the last poll, keeps a partial last line until its
newline arrives, and numbers every accepted record with ``seq`` from 0. Bad input never stops a
run: a malformed line is reported once (with its line number) and skipped; a value that is not a
number is dropped with a one-time warning per metric name.

Conventions (shared with :mod:`opensweep.run`, which writes the file for Python programs):

- ``_step`` is the user's step. When it is an integer (or an integral float) it becomes the
  record's step; otherwise the step equals ``seq``.
- Booleans are numbers (1.0 / 0.0). Nested objects are flattened with ``.``:
  ``{"val": {"loss": 1}}`` gives the metric ``val.loss``.
- Non-finite numbers: JSON has no literal for them, so both Python's tokens (``NaN``,
  ``Infinity``, ``-Infinity``) and the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` are read
  as the IEEE values and forwarded; a diverged loss is information, not noise.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: How often a running program's metrics file is polled. Fast enough that hyperband sees a step
#: within a tenth of a second, slow enough that an idle tail costs nothing measurable.
POLL_INTERVAL_SECONDS = 0.05

#: Bytes read per poll at most, so a program that writes gigabytes cannot stall the agent's loop.
MAX_READ_BYTES = 4 * 1024 * 1024

#: A line longer than this is reported and skipped instead of being held in memory.
MAX_LINE_BYTES = 1024 * 1024

#: After this many reports about one file the rest are counted, not printed.
MAX_REPORTS = 20

#: Values kept per record: the controller refuses wider records (and the whole batch with them).
MAX_VALUES_PER_RECORD = 1000

_NON_FINITE_STRINGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass(frozen=True)
class Record:
    """One accepted line of the metrics file."""

    seq: int
    step: int
    values: dict[str, float]
    time: float
    line: int


def numeric_value(value: Any) -> float | None:
    """The float a logged value stands for, or None when it is not a number."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str) and value in _NON_FINITE_STRINGS:
        return _NON_FINITE_STRINGS[value]
    return None


def flatten(obj: Mapping[str, Any], prefix: str = "",
            out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested mappings -> dotted names (``{"val": {"loss": 1}}`` -> ``{"val.loss": 1}``)."""
    flat: dict[str, Any] = {} if out is None else out
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flatten(value, name + ".", flat)
        else:
            flat[name] = value
    return flat


def _step_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


@dataclass
class LineParser:
    """Turns complete lines into records, remembering what it has already warned about.

    ``warn`` receives each human-readable problem exactly once.
    """

    warn: Callable[[str], None]
    next_seq: int = 0
    reports: int = 0
    suppressed: int = 0
    _warned_keys: set[str] = field(default_factory=set)
    _warned_wide: bool = False

    def _report(self, message: str) -> None:
        if self.reports < MAX_REPORTS:
            self.reports += 1
            self.warn(message)
            if self.reports == MAX_REPORTS:
                self.warn("further problems in this metrics file are not reported")
        else:
            self.suppressed += 1

    def parse(self, raw: bytes, line_number: int, now: float) -> Record | None:
        """Parse one line (without its newline); None when it is blank or skipped."""
        text_bytes = raw.strip()
        if not text_bytes:
            return None
        try:
            obj = json.loads(text_bytes)
        except (ValueError, UnicodeDecodeError) as exc:
            self._report(f"metrics line {line_number} is not valid JSON ({exc}); skipped")
            return None
        if not isinstance(obj, dict):
            self._report(
                f"metrics line {line_number} is a JSON {type(obj).__name__}, not an object; "
                "skipped"
            )
            return None
        flat = flatten(obj)
        step_value = flat.pop("_step", None)
        values: dict[str, float] = {}
        for name, value in flat.items():
            number = numeric_value(value)
            if number is None:
                if name not in self._warned_keys:
                    self._warned_keys.add(name)
                    self._report(
                        f"metric {name!r} has a non-numeric value ({type(value).__name__}, "
                        f"first at line {line_number}); non-numeric values are dropped"
                    )
                continue
            values[name] = number
        if len(values) > MAX_VALUES_PER_RECORD:
            if not self._warned_wide:
                self._warned_wide = True
                self._report(f"metrics line {line_number} has {len(values)} values; only the "
                             f"first {MAX_VALUES_PER_RECORD} of a line are kept")
            values = dict(list(values.items())[:MAX_VALUES_PER_RECORD])
        seq = self.next_seq
        self.next_seq += 1
        step = _step_of(step_value)
        return Record(seq=seq, step=seq if step is None else step, values=values, time=now,
                      line=line_number)


class MetricsTail:
    """Incremental reader of one metrics file.

    Call :meth:`poll` whenever convenient; it returns the records completed since the last call.
    Call :meth:`close` once the program has ended: a last line without a newline is then parsed
    as it stands (a program killed mid-write leaves one, and it is reported if malformed).
    """

    def __init__(self, path: str | os.PathLike[str], warn: Callable[[str], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.path = os.fspath(path)
        self._parser = LineParser(warn)
        self._clock = clock
        self._file: Any = None
        self._pending = b""
        self._skipping_long_line = False
        self._line_number = 0
        self._offset = 0
        self._truncation_reported = False

    @property
    def records_read(self) -> int:
        return self._parser.next_seq

    def _open(self) -> bool:
        if self._file is None:
            try:
                self._file = open(self.path, "rb")  # noqa: SIM115 - held open across polls
            except FileNotFoundError:
                return False
        return True

    def _lines(self, data: bytes) -> Iterator[bytes]:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            chunk = data[start:end]
            start = end + 1
            if self._skipping_long_line:
                self._skipping_long_line = False
                self._line_number += 1
                continue
            line = self._pending + chunk if self._pending else chunk
            self._pending = b""
            self._line_number += 1
            yield line
        rest = data[start:]
        if self._skipping_long_line:
            return
        self._pending += rest
        if len(self._pending) > MAX_LINE_BYTES:
            self._parser._report(
                f"metrics line {self._line_number + 1} is longer than {MAX_LINE_BYTES} bytes; "
                "skipped"
            )
            self._pending = b""
            self._skipping_long_line = True

    def poll(self) -> list[Record]:
        """Records completed since the last poll (at most MAX_READ_BYTES worth per call)."""
        if not self._open():
            return []
        data = self._file.read(MAX_READ_BYTES)
        if not data:
            self._check_truncation()
            return []
        self._offset += len(data)
        now = self._clock()
        records = []
        for line in self._lines(data):
            record = self._parser.parse(line, self._line_number, now)
            if record is not None:
                records.append(record)
        return records

    def _check_truncation(self) -> None:
        """A file that shrank was rewritten (opened with "w" instead of "a"): say so once and
        follow it from where it now ends, rather than read again what was already sent."""
        size = os.fstat(self._file.fileno()).st_size
        if size >= self._offset:
            return
        if not self._truncation_reported:
            self._truncation_reported = True
            self._parser._report(
                f"the metrics file shrank from {self._offset} to {size} bytes after line "
                f"{self._line_number}: it must only be appended to (open it with 'a', not 'w'); "
                "reading on from its new end")
        self._file.seek(size)
        self._offset = size
        self._pending = b""
        self._skipping_long_line = False

    def drain(self) -> list[Record]:
        """Everything currently in the file, however large (used when the program has ended)."""
        records: list[Record] = []
        while True:
            batch_start = self._offset
            records.extend(self.poll())
            if self._offset == batch_start:
                return records

    def close(self) -> list[Record]:
        """Read what is left, including an unterminated last line, and release the file."""
        records = self.drain()
        if self._pending and not self._skipping_long_line:
            self._line_number += 1
            record = self._parser.parse(self._pending, self._line_number, self._clock())
            if record is not None:
                records.append(record)
        self._pending = b""
        if self._file is not None:
            self._file.close()
            self._file = None
        return records
