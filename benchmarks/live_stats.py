"""Live latency figures from put and arrival times: percentiles, bounds, missing updates.

Commit time is bracketed, not known: a put's PutResult arrives after its COMMIT
(so latency from it is a lower bound), and the update row's `computed_at` is
CURRENT_TIMESTAMP, the start of the committing transaction (so latency from it
is an upper bound; it includes the put's own work in the store).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Put", "latency_figures", "percentiles", "schedule_figures"]


@dataclass(frozen=True)
class Put:
    page: str
    due: float  # when the open-loop schedule wanted it sent (wall clock, s)
    sent: float
    result: float  # when its PutResult reached the driver: after the commit


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/min/max and n; None for each figure when there are no values."""
    if not values:
        return {k: None for k in ("p50", "p95", "p99", "max", "min")} | {"n": 0}
    a = np.asarray(values)
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
        "min": float(a.min()),
        "n": len(values),
    }


def latency_figures(
    puts: list[Put], arrivals: list[dict[str, float]], computed_at: dict[str, float]
) -> dict:
    """Per (subscriber, put): arrival - PutResult (lower bound) and arrival - computed_at
    (upper bound), in ms; an update a subscriber never got is counted as missing."""
    lower: list[float] = []
    upper: list[float] = []
    missing = 0
    for seen in arrivals:
        for put in puts:
            at = seen.get(put.page)
            if at is None:
                missing += 1
                continue
            lower.append((at - put.result) * 1000)
            if put.page in computed_at:
                upper.append((at - computed_at[put.page]) * 1000)
    return {
        "latency_ms": percentiles(lower),
        "latency_upper_ms": percentiles(upper),
        "expected": len(arrivals) * len(puts),
        "deliveries": len(lower),
        "missing": missing,
    }


def schedule_figures(puts: list[Put], rate: float) -> dict:
    """How well the open-loop driver kept its schedule: achieved rate and lateness."""
    sent = sorted(p.sent for p in puts)
    span = sent[-1] - sent[0] if len(sent) > 1 else 0.0
    return {
        "puts": len(puts),
        "puts_per_s_target": rate,
        # n puts over n - 1 intervals: the rate at which they were actually sent.
        "puts_per_s": (len(sent) - 1) / span if span > 0 else None,
        "late_ms": percentiles([(p.sent - p.due) * 1000 for p in puts]),
        "put_ms": percentiles([(p.result - p.sent) * 1000 for p in puts]),
    }
