"""What the agent shows its user: one line per run on stdout, a live progress line on a terminal.

A finished run's line is the record a person scrolls back to, so it carries everything needed to
judge the run at a glance: its id, parameters, outcome (with the reason when it is not a plain
success), duration and the last value of the sweep's metric. The progress line exists only on a
terminal (it is rewritten in place with ``\\r``); piped output gets the run lines alone, so logs
stay grep-able.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from agent.metrics import flatten
from agent.runner import Outcome, RunResult
from agent.session import RunView
from controller.display import format_duration

#: Parameters longer than this (in the run line) are cut with an ellipsis.
MAX_PARAMS_CHARS = 120


def format_number(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def format_params(params: dict[str, Any], limit: int = MAX_PARAMS_CHARS) -> str:
    text = " ".join(f"{k}={v}" for k, v in flatten(params).items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _metric_text(view: RunView, metric_name: str) -> str:
    if metric_name and metric_name in view.last_values:
        return f"{metric_name}={format_number(view.last_values[metric_name])}"
    if metric_name:
        return f"{metric_name}=-"
    return ""


def run_line(view: RunView, result: RunResult, metric_name: str) -> str:
    """The line printed when a run ends, e.g.
    ``run ab12cd34-0003  lr=0.01 optimizer=adam  finished  4.2s  loss=0.0731``."""
    outcome = result.outcome.value
    if result.outcome is not Outcome.FINISHED:
        reason = result.reason.removeprefix(f"{outcome}: ")
        outcome += f" ({reason})"
    parts = [f"run {view.run_id}", format_params(view.params), outcome,
             format_duration(result.duration)]
    metric = _metric_text(view, metric_name)
    if metric:
        parts.append(metric)
    return "  ".join(p for p in parts if p)


class ConsoleReporter:
    """Run lines on ``out``; a progress line on ``progress`` when it is a terminal."""

    def __init__(self, out: TextIO | None = None, progress: TextIO | None = None,
                 live: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.progress = progress or sys.stderr
        self.live = self.progress.isatty() if live is None else live
        self._shown = 0

    def clear(self) -> None:
        """Erase the progress line (before a log message is written under it)."""
        if self._shown:
            self.progress.write("\r" + " " * self._shown + "\r")
            self.progress.flush()
            self._shown = 0

    def run_started(self, run: RunView) -> None:
        if self.live:
            self._show(f"run {run.run_id}  {format_params(run.params)}  starting")

    def run_progress(self, run: RunView, metric_name: str) -> None:
        if not self.live:
            return
        elapsed = format_duration(time.time() - run.started_at)
        parts = [f"run {run.run_id}", f"running {elapsed}"]
        if run.last_step is not None:
            parts.append(f"step {run.last_step}")
        metric = _metric_text(run, metric_name)
        if metric:
            parts.append(metric)
        self._show("  ".join(parts))

    def _show(self, text: str) -> None:
        self.clear()
        self.progress.write(text)
        self.progress.flush()
        self._shown = len(text)

    def run_ended(self, run: RunView, result: RunResult, metric_name: str) -> None:
        self.clear()
        self.out.write(run_line(run, result, metric_name) + "\n")
        self.out.flush()

    def close(self) -> None:
        self.clear()
