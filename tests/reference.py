"""DESIGN.md §4 metrics computed the slow, obvious way, to check the store's aggregates against.

`events` holds one row per (already deduplicated) page view with at least
`session_id`, `page_url` and a time-zone-aware `recorded_at`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

__all__ = ["daily", "hourly"]

_DAILY = [
    "page_url",
    "date",
    "view_count",
    "unique_visitors",
    "bounce_rate",
    "avg_session_duration",
]
_HOURLY = ["page_url", "hour", "view_count", "unique_visitors"]


def daily(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (page_url, UTC date), sorted by both, with the columns of va_pageview_aggregate.

    bounce_rate is rounded half-up to 2 decimals; avg_session_duration to 6.
    """
    ev = events.assign(day=events.recorded_at.dt.tz_convert("UTC").dt.date)
    sess = ev.groupby(["session_id", "day"]).recorded_at.agg(["count", "min", "max"])
    rows = []
    for (page, day), g in ev.groupby(["page_url", "day"]):
        sessions = sess.loc[[(s, day) for s in g.session_id.unique()]]
        bounced = int((sessions["count"] == 1).sum())
        rate = Decimal(100 * bounced) / Decimal(len(sessions))
        spans = (sessions["max"] - sessions["min"]).dt.total_seconds()
        rows.append(
            {
                "page_url": page,
                "date": day,
                "view_count": len(g),
                "unique_visitors": len(sessions),
                "bounce_rate": float(rate.quantize(Decimal("0.01"), ROUND_HALF_UP)),
                "avg_session_duration": round(float(spans.mean()), 6),
            }
        )
    return (
        pd.DataFrame(rows, columns=_DAILY).sort_values(["page_url", "date"]).reset_index(drop=True)
    )


def hourly(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (page_url, UTC hour), sorted by both, with the columns of va_pageview_hourly.

    `hour` is the start of the hour as a UTC timestamp.
    """
    ev = events.assign(hour=events.recorded_at.dt.tz_convert("UTC").dt.floor("h"))
    out = (
        ev.groupby(["page_url", "hour"])
        .agg(view_count=("session_id", "size"), unique_visitors=("session_id", "nunique"))
        .reset_index()
    )
    return out[_HOURLY].sort_values(["page_url", "hour"]).reset_index(drop=True)
