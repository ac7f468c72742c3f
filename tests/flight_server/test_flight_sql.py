"""Flight SQL through clients nobody here wrote: the ADBC Flight SQL driver (Go),
pandas and Polars on its connection, and flightsql-dbapi. Both backends.
"""

from __future__ import annotations

import datetime as dt
import warnings

import adbc_driver_flightsql.dbapi as flightsql
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from tests.reference import daily

# The driver warns that it cannot turn autocommit off: flightdeck has no
# transactions (it says so in SqlInfo), which is what we want.
pytestmark = pytest.mark.filterwarnings("ignore:Cannot disable autocommit")

UTC = dt.UTC
BASE = dt.datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


def _events(n: int = 12, start: int = 0) -> pa.Table:
    """`n` page views: sessions s0..s3 over /a and /b, a minute apart, ids e<start+i>."""
    ids = range(start, start + n)
    return pa.table(
        {
            "event_id": [f"e{i}" for i in ids],
            "session_id": [f"s{i % 4}" for i in ids],
            "page_url": ["/a" if i % 3 else "/b" for i in ids],
            "recorded_at": pa.array(
                [BASE + dt.timedelta(minutes=i) for i in ids], pa.timestamp("us", "UTC")
            ),
        }
    )


@pytest.fixture
def conn(server):
    with flightsql.connect(f"grpc://127.0.0.1:{server.port}") as connection:
        yield connection


@pytest.fixture
def loaded(conn) -> pa.Table:
    events = _events()
    with conn.cursor() as cursor:
        assert cursor.adbc_ingest("tb_pageview_event", events, mode="append") == 12
    return events


def _expected(events: pa.Table) -> pd.DataFrame:
    return daily(events.to_pandas())


def test_get_info_names_the_server(conn):
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "flightdeck"
    assert info["vendor_version"]
    assert info["vendor_arrow_version"] == pa.__version__


def test_execute_reads_a_view(conn, loaded):
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT page_url, date, view_count, unique_visitors, bounce_rate "
            "FROM va_pageview_aggregate ORDER BY page_url"
        )
        table = cursor.fetch_arrow_table()
    expected = _expected(loaded)
    assert table.column("page_url").to_pylist() == expected.page_url.tolist()
    assert table.column("view_count").to_pylist() == expected.view_count.tolist()
    assert table.column("unique_visitors").to_pylist() == expected.unique_visitors.tolist()
    assert table.schema.field("page_url").type == pa.string()  # never string_view


@pytest.mark.parametrize("placeholder", ["?", "$1"])
def test_prepared_statement_with_parameters(conn, loaded, placeholder):
    sql = (
        "SELECT page_url, view_count FROM va_pageview_aggregate "
        f"WHERE page_url = {placeholder} ORDER BY page_url"
    )
    with conn.cursor() as cursor:
        cursor.execute(sql, parameters=("/b",))
        first = cursor.fetch_arrow_table().to_pylist()
        cursor.execute(sql, parameters=("/a",))  # the same statement, new parameters
        second = cursor.fetch_arrow_table().to_pylist()
    expected = _expected(loaded).set_index("page_url").view_count
    assert first == [{"page_url": "/b", "view_count": int(expected["/b"])}]
    assert second == [{"page_url": "/a", "view_count": int(expected["/a"])}]


def test_two_parameters_and_a_question_mark_in_a_string(conn, loaded):
    sql = (
        "SELECT count(*) AS n FROM va_pageview_event "
        "WHERE session_id = ? AND page_url <> '?' AND recorded_at >= ?"
    )
    with conn.cursor() as cursor:
        cursor.execute(sql, parameters=("s1", BASE + dt.timedelta(minutes=5)))
        assert cursor.fetchone() == (2,)  # e5 and e9


def test_wrong_number_of_parameters_is_refused(conn, loaded):
    with conn.cursor() as cursor:
        with pytest.raises(flightsql.Error, match=r"query has 1 parameter\(s\) but 2 were bound"):
            cursor.execute(
                "SELECT * FROM va_pageview_aggregate WHERE page_url = ?", parameters=("/a", "/b")
            )


def test_get_objects_lists_only_va_views_with_columns(conn):
    objects = conn.adbc_get_objects().read_all().to_pylist()
    schemas = [s for catalog in objects for s in catalog["catalog_db_schemas"]]
    tables = {t["table_name"]: t for s in schemas for t in s["db_schema_tables"]}
    assert sorted(tables) == [
        "va_event",
        "va_pageview_aggregate",
        "va_pageview_event",
        "va_pageview_hourly",
    ]
    columns = [c["column_name"] for c in tables["va_pageview_hourly"]["table_columns"]]
    assert columns[:4] == ["page_url", "hour", "view_count", "unique_visitors"]
    assert {t["table_type"] for t in tables.values()} == {"VIEW"}


def test_get_objects_filters_by_like_pattern(conn):
    objects = conn.adbc_get_objects(depth="tables", table_name_filter="va\\_pageview\\_h%")
    tables = [
        t["table_name"]
        for catalog in objects.read_all().to_pylist()
        for s in catalog["catalog_db_schemas"]
        for t in s["db_schema_tables"]
    ]
    assert tables == ["va_pageview_hourly"]


def test_get_table_schema_matches_the_query_schema(conn, loaded):
    schema = conn.adbc_get_table_schema("va_pageview_aggregate")
    with conn.cursor() as cursor:
        cursor.execute("SELECT * FROM va_pageview_aggregate")
        queried = cursor.fetch_arrow_table().schema
    assert schema.names == queried.names
    assert schema.types == queried.types


def test_adbc_ingest_is_exact_and_deduplicated(conn, server):
    first, overlap = _events(12), _events(8, start=8)  # e8..e11 sent twice
    with conn.cursor() as cursor:
        assert cursor.adbc_ingest("tb_pageview_event", first, mode="append") == 12
        assert cursor.adbc_ingest("tb_pageview_event", overlap, mode="append") == 4
        cursor.execute(
            "SELECT page_url, view_count, unique_visitors, bounce_rate, avg_session_duration "
            "FROM va_pageview_aggregate ORDER BY page_url"
        )
        got = cursor.fetch_arrow_table().to_pandas()
    expected = _expected(_events(16))
    assert got.page_url.tolist() == expected.page_url.tolist()
    assert got.view_count.tolist() == expected.view_count.tolist()
    assert got.unique_visitors.tolist() == expected.unique_visitors.tolist()
    assert [float(x) for x in got.bounce_rate] == expected.bounce_rate.tolist()
    assert got.avg_session_duration.round(6).tolist() == expected.avg_session_duration.tolist()


def test_adbc_ingest_of_a_bad_batch_names_the_column_and_writes_nothing(conn, loaded):
    bad = _events(3, start=100).drop_columns(["page_url"])
    with conn.cursor() as cursor:
        with pytest.raises(flightsql.Error, match="page_url"):
            cursor.adbc_ingest("tb_pageview_event", bad, mode="append")
        cursor.execute("SELECT count(*) FROM va_pageview_event")
        assert cursor.fetchone() == (12,)


def test_adbc_ingest_refuses_values_that_poison_clients(conn, loaded):
    # Issue 14, item 10: the same rules as DoPut and NATS (one validation path).
    far = _events(3, start=100).set_column(
        3,
        "recorded_at",
        pa.array([0, 0, 10**18], pa.timestamp("us", "UTC")),  # year 33658
    )
    nul = _events(3, start=200).set_column(2, "page_url", pa.array(["/a", "/a", "/\x00"]))
    with conn.cursor() as cursor:
        for bad, words in [(far, r"\[timestamp\].*recorded_at"), (nul, r"\[text\].*page_url")]:
            with pytest.raises(flightsql.Error, match=words):
                cursor.adbc_ingest("tb_pageview_event", bad, mode="append")
        cursor.execute("SELECT count(*) FROM va_pageview_event")
        assert cursor.fetchone() == (12,)


@pytest.mark.parametrize(
    ("table", "mode", "words"),
    [
        ("va_pageview_aggregate", "append", "appends page-view events to 'tb_pageview_event'"),
        ("my_table", "create", "cannot ingest into 'my_table'"),
        ("tb_pageview_event", "replace", "use mode 'append'"),
        ("tb_pageview_event", "create", "use mode 'append'"),
    ],
)
def test_adbc_ingest_elsewhere_is_refused_clearly(conn, table, mode, words):
    with conn.cursor() as cursor:
        with pytest.raises(flightsql.Error, match=words):
            cursor.adbc_ingest(table, _events(2), mode=mode)


def test_refused_sql_is_a_driver_error_with_the_servers_reason(conn):
    with conn.cursor() as cursor:
        with pytest.raises(flightsql.ProgrammingError, match=r"\[va-views-only\].*tb_"):
            cursor.execute("SELECT * FROM tb_pageview_event")
        with pytest.raises(flightsql.ProgrammingError, match=r"\[read-only\]"):
            cursor.execute("DELETE FROM va_pageview_aggregate")
        cursor.execute("SELECT 1 AS still_serving")
        assert cursor.fetchone() == (1,)


def test_pandas_read_sql_on_the_adbc_connection(conn, loaded):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas notes ADBC is not SQLAlchemy
        frame = pd.read_sql(
            "SELECT page_url, view_count FROM va_pageview_aggregate ORDER BY page_url", conn
        )
    expected = _expected(loaded)
    assert frame.page_url.tolist() == expected.page_url.tolist()
    assert frame.view_count.tolist() == expected.view_count.tolist()


def test_polars_read_database_on_the_adbc_connection(conn, loaded):
    frame = pl.read_database(
        "SELECT page_url, view_count, unique_visitors FROM va_pageview_aggregate ORDER BY page_url",
        connection=conn,
    )
    expected = _expected(loaded)
    assert frame["page_url"].to_list() == expected.page_url.tolist()
    assert frame["unique_visitors"].to_list() == expected.unique_visitors.tolist()


def test_flightsql_dbapi_runs_a_query(server, loaded):
    from flightsql import FlightSQLClient, connect

    connection = connect(FlightSQLClient(host="127.0.0.1", port=server.port, insecure=True))
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT page_url, view_count FROM va_pageview_aggregate ORDER BY page_url")
        rows = cursor.fetchall()
    finally:
        connection.close()
    expected = _expected(loaded)
    assert [tuple(r) for r in rows] == list(
        zip(expected.page_url, expected.view_count.astype(int), strict=True)
    )


def test_sqlalchemy_dialect_reflects_views_and_queries(server, loaded):
    import flightsql.sqlalchemy  # noqa: F401  (registers datafusion+flightsql)
    import sqlalchemy as sa

    engine = sa.create_engine(f"datafusion+flightsql://127.0.0.1:{server.port}?insecure=true")
    try:
        inspector = sa.inspect(engine)
        assert inspector.get_table_names() == [
            "va_event",
            "va_pageview_aggregate",
            "va_pageview_event",
            "va_pageview_hourly",
        ]
        columns = [c["name"] for c in inspector.get_columns("va_pageview_hourly")]
        assert columns[:2] == ["page_url", "hour"]
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT page_url, view_count FROM va_pageview_aggregate ORDER BY page_url")
            ).all()
    finally:
        engine.dispose()
    expected = _expected(loaded)
    assert [tuple(r) for r in rows] == list(
        zip(expected.page_url, expected.view_count.astype(int), strict=True)
    )


def test_flightsql_dbapi_binds_union_typed_parameters(server, loaded):
    """flightsql-dbapi sends each parameter as a one-row dense union (int, float, str,
    bytes, bool children): each binds as its child's value on both backends."""
    from flightsql import FlightSQLClient, connect

    connection = connect(FlightSQLClient(host="127.0.0.1", port=server.port, insecure=True))
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT page_url, view_count FROM va_pageview_aggregate "
            "WHERE page_url = ? AND view_count >= ? ORDER BY page_url",
            ("/a", 1),
        )
        rows = cursor.fetchall()
    finally:
        connection.close()
    expected = _expected(loaded).set_index("page_url").view_count
    assert [tuple(r) for r in rows] == [("/a", int(expected["/a"]))]


def test_flightsql_dbapi_binds_a_date_sent_as_text_in_a_union(server, loaded):
    """A union's string for a parameter the store types as a date is cast as a date."""
    from flightsql import FlightSQLClient, connect

    connection = connect(FlightSQLClient(host="127.0.0.1", port=server.port, insecure=True))
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT page_url FROM va_pageview_aggregate WHERE page_url = ? AND date >= ?",
            ("/a", "2000-01-01"),
        )
        rows = cursor.fetchall()
    finally:
        connection.close()
    assert [tuple(r) for r in rows] == [("/a",)] * int((_expected(loaded).page_url == "/a").sum())
