"""The metrics of docs/metrics.md, computed the slow, obvious way.

The store's aggregates are checked against these.

`events` holds one row per (already deduplicated) page view with at least
`session_id`, `page_url` and a time-zone-aware `recorded_at`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

__all__ = ["assert_matches", "daily", "hourly"]

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


def assert_matches(
    got_daily: pd.DataFrame,
    got_hourly: pd.DataFrame,
    events: pd.DataFrame,
    report: Callable[[str], None] = lambda _: None,
) -> None:
    """The stored daily and hourly rows equal the recomputation from `events`, exactly.

    Only avg_session_duration has a tolerance: the store keeps it from an exact
    sum of microseconds, the reference rounds to 6 decimals (up to 5e-7), and
    floats add the rest. `report` receives both sides (hypothesis's `note`).
    """
    want = daily(events)
    got = got_daily[list(want.columns)].sort_values(["page_url", "date"]).reset_index(drop=True)
    report(f"daily, expected:\n{want}\ndaily, stored:\n{got}")
    pd.testing.assert_frame_equal(
        got.drop(columns="avg_session_duration"),
        want.drop(columns="avg_session_duration"),
        check_dtype=False,
        check_exact=True,
    )
    pd.testing.assert_series_equal(
        got.avg_session_duration,
        want.avg_session_duration,
        check_dtype=False,
        check_exact=False,
        rtol=0,
        atol=1.5e-6,
    )
    want_hourly = hourly(events)
    got = got_hourly[list(want_hourly.columns)].sort_values(["page_url", "hour"])
    got = got.reset_index(drop=True)
    report(f"hourly, expected:\n{want_hourly}\nhourly, stored:\n{got}")
    for frame in (got, want_hourly):
        frame["hour"] = frame.hour.astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(got, want_hourly, check_dtype=False, check_exact=True)
