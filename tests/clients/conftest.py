"""The Python client against a real server (both backends), and page-view data to load."""

from __future__ import annotations

from collections.abc import Iterator

import flightdeck
import pandas as pd
import pyarrow as pa
import pytest
from flightdeck.flight_server import FlightdeckServer

from tests.conftest import insert

PAGES = ["/home", "/products", "/pricing"]


def pageviews(n: int, start: int = 0) -> pa.Table:
    """`n` page views with distinct event ids over two UTC days, 5 views per session.

    Event `i` is the same row whatever `start` and `n` cut it out of, so that two
    loads sharing ids are exact duplicates.
    """
    ids = range(start, start + n)
    return pa.table(
        {
            "event_id": [f"evt-{i}" for i in ids],
            "session_id": [f"session-{i // 5}" for i in ids],
            "page_url": [PAGES[i % 3] for i in ids],
            # Sessions of five views a few minutes apart; every 7th session on the 16th.
            "recorded_at": [
                f"2024-01-{15 + (i // 5 % 7 == 0)}T{10 + i // 5 % 12:02d}:{i % 5 * 3:02d}:00Z"
                for i in ids
            ],
            "user_id": [str(i % 11) for i in ids],
        }
    )


def as_events(table: pa.Table) -> pd.DataFrame:
    """`table` shaped like tests.reference expects: UTC timestamps."""
    frame = table.to_pandas()
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
    return frame


@pytest.fixture
def location(server: FlightdeckServer) -> str:
    return f"grpc://127.0.0.1:{server.port}"


@pytest.fixture
def fd(location: str) -> Iterator[flightdeck.Client]:
    with flightdeck.connect(location) as client:
        yield client


def micros(year: int, hour: int = 1) -> int:
    """`year`-01-01T`hour`:00:00.000005Z in microseconds, past Python's datetime too."""

    def days_before(y: int) -> int:  # proleptic Gregorian, from 0001-01-01
        return 365 * (y - 1) + (y - 1) // 4 - (y - 1) // 100 + (y - 1) // 400

    return (days_before(year) - days_before(1970)) * 86_400_000_000 + hour * 3_600_000_000 + 5


def store_far_times(store) -> None:
    """Events an older server stored (ingest refuses them now), bypassing ingest: the
    years 33658 and 287168 beside an ordinary 2024."""
    years = [2024, 33658, 287168]
    insert(
        store,
        "tb_pageview_event",
        pa.table(
            {
                "event_id": ["near", "far", "farther"],
                "session_id": ["s"] * 3,
                "page_url": ["/"] * 3,
                "recorded_at": pa.array([micros(y) for y in years], pa.timestamp("us", "UTC")),
            }
        ),
    )
