"""Turning measured seconds into the figures people compare: rows/s and MB/s."""

from __future__ import annotations

from .measure import summary

__all__ = ["rates"]


def rates(times: list[float], rows: int, nbytes: int | None = None) -> dict:
    """Seconds, rows/s and (with `nbytes`) MB/s, each as median and spread."""
    out = {
        "seconds": summary(times),
        "rows_per_s": summary([rows / t for t in times]),
    }
    if nbytes is not None:
        out["mb_per_s"] = summary([nbytes / 1e6 / t for t in times])
    return out
