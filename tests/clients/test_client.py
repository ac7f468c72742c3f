"""The Python client against a real server, on both backends: load, query, view, views."""

from __future__ import annotations

import datetime as dt

import flightdeck
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from tests.clients.conftest import as_events, micros, pageviews, store_far_times
from tests.reference import daily

N = 300


def _aggregates(fd: flightdeck.Client) -> pd.DataFrame:
    columns = ["page_url", "date", "view_count", "unique_visitors", "bounce_rate"]
    table = fd.view("va_pageview_aggregate", columns=columns)
    return table.to_pandas().sort_values(["page_url", "date"]).reset_index(drop=True)


def _expected(table: pa.Table) -> pd.DataFrame:
    return daily(as_events(table))[
        ["page_url", "date", "view_count", "unique_visitors", "bounce_rate"]
    ]


def _source(kind: str, table: pa.Table, tmp_path):
    if kind == "table":
        return table
    if kind == "reader":
        return table.to_reader(max_chunksize=70)
    if kind == "dataframe":
        return table.to_pandas()
    if kind == "parquet":
        pq.write_table(table, tmp_path / "events.parquet", row_group_size=100)
        return tmp_path / "events.parquet"
    pcsv.write_csv(table, tmp_path / "events.csv")
    return str(tmp_path / "events.csv")


@pytest.mark.parametrize("kind", ["table", "reader", "dataframe", "parquet", "csv"])
@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_load_each_source_twice_gives_exact_aggregates(fd, tmp_path, kind):
    table = pageviews(N)
    first = fd.load(_source(kind, table, tmp_path), progress=False, batch_rows=128)
    assert (first.accepted, first.duplicates, first.rows) == (N, 0, N)
    assert first.seconds > 0 and first.rows_per_second > 0
    again = fd.load(_source(kind, table, tmp_path), progress=False)
    assert (again.accepted, again.duplicates, again.rows) == (0, N, N)
    pd.testing.assert_frame_equal(_aggregates(fd), _expected(table), check_dtype=False)


def test_overlapping_loads_count_each_event_once(fd):
    fd.load(pageviews(200), progress=False)
    result = fd.load(pageviews(200, start=150), progress=False)
    assert (result.accepted, result.duplicates) == (150, 50)
    pd.testing.assert_frame_equal(_aggregates(fd), _expected(pageviews(350)), check_dtype=False)


def test_query_query_pandas_and_query_polars_agree(fd):
    fd.load(pageviews(N), progress=False)
    sql = (
        "SELECT page_url, sum(view_count) AS views FROM va_pageview_aggregate "
        "GROUP BY page_url ORDER BY page_url"
    )
    table = fd.query(sql)
    assert isinstance(table, pa.Table)
    assert [(r["page_url"], int(r["views"])) for r in table.to_pylist()] == [
        ("/home", 100),
        ("/pricing", 100),
        ("/products", 100),
    ]
    frame = fd.query_pandas(sql)
    assert isinstance(frame, pd.DataFrame)
    assert frame.page_url.tolist() == ["/home", "/pricing", "/products"]
    polars_frame = fd.query_polars(sql)
    assert isinstance(polars_frame, pl.DataFrame)
    assert polars_frame["views"].cast(pl.Int64).to_list() == [100, 100, 100]


def test_query_pandas_names_a_time_it_cannot_hold(store, fd):
    # Issue 14, item 10: a store an older server filled may hold the year 33658;
    # pandas failed on it (or made Timestamps that fail to print).
    store_far_times(store)
    sql = "SELECT event_id, {} FROM va_pageview_event ORDER BY recorded_at"
    for column, value in [
        ("recorded_at", "+33658-01-01T01:00:00.000005+00:00"),
        ("CAST(recorded_at AS DATE) AS day", "+33658-01-01"),
    ]:
        with pytest.raises(flightdeck.QueryError) as err:
            fd.query_pandas(sql.format(column))
        assert (err.value.rule, err.value.column, err.value.row) == (
            "timestamp",
            column.split()[-1],
            1,
        )
        assert value in str(err.value) and "WHERE" in str(err.value)
    kept = fd.query_pandas(
        "SELECT event_id, recorded_at FROM va_pageview_event "
        "WHERE recorded_at < TIMESTAMP '2262-01-01 00:00:00'"
    )
    assert kept.event_id.tolist() == ["near"]
    far = fd.query("SELECT recorded_at FROM va_pageview_event WHERE event_id = 'far'")
    assert far.column(0).cast(pa.int64()).to_pylist() == [micros(33658)]  # Arrow holds it


def test_query_reader_streams_batches(fd):
    fd.load(pageviews(N), progress=False)
    reader = fd.query_reader("SELECT event_id, recorded_at FROM va_pageview_event")
    assert isinstance(reader, pa.RecordBatchReader)
    assert reader.schema.field("recorded_at").type == pa.timestamp("us", "UTC")
    assert sum(batch.num_rows for batch in reader) == N


def test_view_filters_on_the_server(fd):
    fd.load(pageviews(N), progress=False)
    whole = fd.view("va_pageview_aggregate")
    assert whole.num_rows == 6  # 3 pages x 2 days
    products = fd.view("va_pageview_aggregate", where={"page_url": "/products"})
    assert set(products.column("page_url").to_pylist()) == {"/products"}
    assert products.num_rows == 2
    others = fd.view("va_pageview_aggregate", where={"page_url": {"!=": "/products"}})
    assert others.num_rows == 4 and "/products" not in others.column("page_url").to_pylist()
    some = fd.view(
        "va_pageview_aggregate",
        where={"page_url": {"in": ["/home", "/pricing"]}, "date": dt.date(2024, 1, 16)},
        columns=["page_url", "view_count"],
    )
    assert some.column_names == ["page_url", "view_count"]
    assert sorted(some.column("page_url").to_pylist()) == ["/home", "/pricing"]
    hours = fd.view(
        "va_pageview_hourly",
        where={"hour": {">=": "2024-01-15T12:00:00Z", "<": dt.datetime(2024, 1, 15, 14)}},
    )
    assert {h.hour for h in hours.column("hour").to_pylist()} == {12, 13}
    events = fd.view("va_pageview_event", where={"referrer": None}, limit=7)
    assert events.num_rows == 7
    assert fd.view("va_pageview_event", where={"referrer": {"!=": None}}).num_rows == 0


def test_views_lists_the_catalog(fd):
    catalog = fd.views()
    assert [v.name for v in catalog] == [
        "va_event",
        "va_pageview_aggregate",
        "va_pageview_event",
        "va_pageview_hourly",
    ]
    name, schema, _rows = catalog[1]
    assert name == "va_pageview_aggregate"
    assert schema.field("view_count").type == pa.int64()
    assert all(v.rows is None or v.rows >= 0 for v in catalog)


def test_a_token_does_not_disturb_a_server_without_auth(location):
    with flightdeck.connect(location, token="not-checked-yet") as fd:
        assert fd.load(pageviews(10), progress=False).accepted == 10
        assert fd.query("SELECT count(*) AS n FROM va_pageview_event").to_pylist() == [{"n": 10}]
