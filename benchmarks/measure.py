"""Interleaved runs and their statistics: every contender runs once per round, A B A B …

Noise on a shared 2-core machine drifts over seconds; interleaving puts each
contender through the same drift, and per-round ratios cancel most of it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

__all__ = ["Timer", "interleave", "paired_ratio", "summary"]

# A contender runs once and returns the seconds it took (it times itself, so that
# its own setup, e.g. building the data to send, stays off the clock).
Contender = Callable[[int], float]


def interleave(
    contenders: Mapping[str, Contender], runs: int, warmup: bool = True, log=print
) -> dict[str, list[float]]:
    """Round r runs every contender once, in order, with r as its argument.

    A warm-up round (r = -1, not recorded) fills caches and connection pools for all.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    if warmup:
        for run in contenders.values():
            run(-1)
    for r in range(runs):
        for name, run in contenders.items():
            times[name].append(run(r))
        done = ", ".join(f"{n} {t:.3f}s" for n, t in _last(times))
        log(f"    round {r + 1}: {done}")
    return times


def _last(times: dict[str, list[float]]):
    return [(name, values[-1]) for name, values in times.items() if values]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict[str, float]:
    """Median and spread (min, max, inter-quartile range) of some figures."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "q1": _quantile(values, 0.25),
        "q3": _quantile(values, 0.75),
        "n": len(values),
    }


def paired_ratio(faster_if_big: list[float], baseline: list[float]) -> dict[str, float]:
    """Speed of A over speed of B, round by round, from their times: tB / tA per round."""
    ratios = [b / a for a, b in zip(faster_if_big, baseline, strict=True) if a > 0]
    return summary(ratios)


class Timer:
    """`with Timer() as t: …` then `t.seconds`."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
