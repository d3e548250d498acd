"""Text for people, shared by the command lines (`sweep`, `agent`) so they read alike."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """``4.2s``, ``3m05s``, ``2h07m``: the precision a person wants at each scale; ``-`` if unknown.
    """
    if seconds is None or seconds < 0 or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
