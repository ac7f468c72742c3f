"""Small, known data for query tests, written straight into the tb_ tables."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

UTC = dt.UTC

AGGREGATES = pa.table(
    {
        "page_url": ["/home", "/products", "/about", "/home"],
        "date": pa.array(
            [
                dt.date(2024, 1, 15),
                dt.date(2024, 1, 15),
                dt.date(2024, 1, 15),
                dt.date(2024, 1, 16),
            ],
            pa.date32(),
        ),
        "view_count": pa.array([120, 300, 7, 50], pa.int64()),
        "unique_visitors": pa.array([80, 150, 7, 40], pa.int64()),
        "bounce_rate": [25.0, 12.5, 100.0, 33.33],
        "avg_session_duration": [61.5, 120.0, 0.0, 30.25],
        "computed_at": pa.array(
            [dt.datetime(2024, 1, 17, tzinfo=UTC)] * 4, pa.timestamp("us", "UTC")
        ),
        "version": pa.array([1, 1, 1, 2], pa.int64()),
    }
)

HOURLY = pa.table(
    {
        "page_url": ["/home", "/home"],
        "hour": pa.array(
            [dt.datetime(2024, 1, 15, 10, tzinfo=UTC), dt.datetime(2024, 1, 15, 11, tzinfo=UTC)],
            pa.timestamp("us", "UTC"),
        ),
        "view_count": pa.array([70, 50], pa.int64()),
        "unique_visitors": pa.array([50, 30], pa.int64()),
        "computed_at": pa.array(
            [dt.datetime(2024, 1, 17, tzinfo=UTC)] * 2, pa.timestamp("us", "UTC")
        ),
        "version": pa.array([1, 1], pa.int64()),
    }
)


def events(n: int, start: int = 0) -> pa.Table:
    """`n` synthetic events with distinct ids, built column-wise (fast for millions)."""
    import pyarrow.compute as pc

    ids = pa.array(range(start, start + n), pa.int64())
    base = dt.datetime(2024, 1, 15, tzinfo=UTC)
    seconds = pc.multiply(pc.bit_wise_and(ids, 0xFFFF), 13)
    recorded = pc.add(
        pa.scalar(base, pa.timestamp("us", "UTC")),
        pc.cast(pc.multiply(seconds, 1_000_000), pa.duration("us")),
    )
    as_text = pc.cast(ids, pa.string())
    return pa.table(
        {
            "event_id": pc.binary_join_element_wise("evt-", as_text, ""),
            "session_id": pc.binary_join_element_wise(
                "session-", pc.cast(pc.divide(ids, 4), pa.string()), ""
            ),
            "page_url": pc.binary_join_element_wise(
                "/page/", pc.cast(pc.bit_wise_and(ids, 31), pa.string()), ""
            ),
            "recorded_at": recorded,
            "user_id": pc.cast(pc.bit_wise_and(ids, 1023), pa.string()),
            "referrer": pa.nulls(n, pa.string()),
            "user_agent": pa.array(["test-agent"] * n) if n < 100_000 else pa.nulls(n, pa.string()),
            "duration_s": pc.cast(pc.bit_wise_and(ids, 63), pa.float64()),
            "properties": pa.nulls(n, pa.string()),
            "ingested_at": recorded,
        }
    )
