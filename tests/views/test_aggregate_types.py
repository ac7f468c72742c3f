"""The same aggregate SQL gives the same Arrow types on DuckDB and PostgreSQL.

The rule (README "Result types"): an exact number of unbounded size (PostgreSQL's
NUMERIC without a precision, DuckDB's HUGEINT: what SUM of integers gives) is
float64, so SUM and AVG are float64 on both; COUNT is int64; MIN/MAX keep the
column's type; a CAST in the query decides the type where that matters.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from flightdeck.views import query as queries

from tests.conftest import insert

_TS = pa.timestamp("us", tz="UTC")
_AGG = "va_pageview_aggregate"
_HOURLY = "va_pageview_hourly"
_EVENT = "va_pageview_event"

# (SQL, the one Arrow type its single column has on every backend)
AGGREGATES = [
    (f"SELECT SUM(view_count) FROM {_AGG}", pa.float64()),
    (f"SELECT SUM(unique_visitors) FROM {_HOURLY}", pa.float64()),
    (f"SELECT SUM(view_count + unique_visitors) FROM {_AGG}", pa.float64()),
    (f"SELECT SUM(version) FROM {_AGG}", pa.float64()),
    (f"SELECT CAST(SUM(view_count) AS BIGINT) FROM {_AGG}", pa.int64()),
    (f"SELECT AVG(view_count) FROM {_AGG}", pa.float64()),
    (f"SELECT AVG(unique_visitors) FROM {_HOURLY}", pa.float64()),
    (f"SELECT AVG(bounce_rate) FROM {_AGG}", pa.float64()),
    (f"SELECT AVG(duration_s) FROM {_EVENT}", pa.float64()),
    (f"SELECT SUM(bounce_rate) FROM {_AGG}", pa.float64()),
    (f"SELECT SUM(avg_session_duration) FROM {_AGG}", pa.float64()),
    (f"SELECT SUM(duration_s) FROM {_EVENT}", pa.float64()),
    (f"SELECT COUNT(*) FROM {_AGG}", pa.int64()),
    (f"SELECT COUNT(DISTINCT page_url) FROM {_EVENT}", pa.int64()),
    (f"SELECT MIN(view_count) FROM {_AGG}", pa.int64()),
    (f"SELECT MAX(unique_visitors) FROM {_HOURLY}", pa.int64()),
    (f"SELECT MAX(bounce_rate) FROM {_AGG}", pa.float64()),
    (f"SELECT MIN(computed_at) FROM {_AGG}", _TS),
    (f"SELECT MAX(hour) FROM {_HOURLY}", _TS),
    (f"SELECT MAX(recorded_at) FROM {_EVENT}", _TS),
    (f"SELECT MIN(date) FROM {_AGG}", pa.date32()),
]


@pytest.fixture
def seeded(store):
    now = dt.datetime(2024, 1, 15, 12, tzinfo=dt.UTC)
    rows = {
        "page_url": ["/a", "/b"],
        "date": [now.date(), now.date()],
        "view_count": [10, 20],
        "unique_visitors": [3, 4],
        "bounce_rate": [50.0, 25.0],
        "avg_session_duration": [1.5, 2.5],
        "computed_at": [now, now],
        "version": [1, 2],
    }
    insert(store, "tb_pageview_aggregate", pa.table(rows))
    return store


@pytest.mark.parametrize(("sql", "expected"), AGGREGATES, ids=[sql for sql, _ in AGGREGATES])
def test_aggregate_types_are_the_same_on_every_backend(seeded, sql, expected):
    store = seeded
    with queries.run(store, queries.prepare(store, sql)) as reader:
        table = reader.read_all()
    assert queries.schema(store, queries.prepare(store, sql)).field(0).type == expected
    assert table.schema.field(0).type == expected


def test_integer_sums_keep_their_value(seeded):
    sql = f"SELECT SUM(view_count) AS n, AVG(view_count) AS mean FROM {_AGG}"
    with queries.run(seeded, queries.prepare(seeded, sql)) as reader:
        assert reader.read_all().to_pylist() == [{"n": 30.0, "mean": 15.0}]
