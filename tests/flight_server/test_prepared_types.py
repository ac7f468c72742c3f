"""A prepared statement's parameter schema declares the types the backend infers, and
values of other types bind when they convert. Through ADBC's Flight SQL driver; both backends.
"""

from __future__ import annotations

import datetime as dt
import time

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:Cannot disable autocommit")

UTC = dt.UTC
BASE = dt.datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
FILTER_SQL = (
    "SELECT event_id FROM va_pageview_event WHERE page_url = ? "
    "AND CAST(recorded_at AS DATE) >= ? AND recorded_at < ? ORDER BY event_id"
)


@pytest.fixture
def conn(server):
    with flightsql.connect(f"grpc://127.0.0.1:{server.port}") as connection:
        yield connection


@pytest.fixture
def loaded(conn) -> None:
    ids = range(6)  # /a, /b alternating, a day apart from 2024-01-15 10:00
    events = pa.table(
        {
            "event_id": [f"e{i}" for i in ids],
            "session_id": [f"s{i}" for i in ids],
            "page_url": ["/a" if i % 2 == 0 else "/b" for i in ids],
            "recorded_at": pa.array(
                [BASE + dt.timedelta(days=i) for i in ids], pa.timestamp("us", "UTC")
            ),
        }
    )
    with conn.cursor() as cursor:
        assert cursor.adbc_ingest("tb_pageview_event", events, mode="append") == 6


def _parameter_types(conn, sql: str) -> list[pa.DataType]:
    with conn.cursor() as cursor:
        return [field.type for field in cursor.adbc_prepare(sql)]


def test_parameter_schema_has_the_types_the_backend_infers(conn):
    # Timestamps in milliseconds: the unit the JDBC driver binds correctly.
    assert _parameter_types(conn, FILTER_SQL) == [
        pa.string(),
        pa.date32(),
        pa.timestamp("ms", tz="UTC"),
    ]
    hourly = "SELECT * FROM va_pageview_hourly WHERE hour >= $1 AND view_count > $2 LIMIT $3"
    assert _parameter_types(conn, hourly) == [pa.timestamp("ms", tz="UTC"), pa.int64(), pa.int64()]


def test_typing_parameters_does_not_run_the_query(conn, backend):
    n = {"duckdb": 400_000, "postgresql": 25_000}[backend]  # minutes if it ran
    sql = (
        f"SELECT max(a.g + b.g) AS m FROM generate_series(1, {n}) AS a(g), "
        f"generate_series(1, {n}) AS b(g) WHERE a.g > ?"
    )
    start = time.monotonic()
    types = _parameter_types(conn, sql)
    assert time.monotonic() - start < 3
    assert types == [{"duckdb": pa.int64(), "postgresql": pa.int32()}[backend]]


def test_a_parameter_without_context_stays_the_wildcard(conn, loaded):
    sql = "SELECT count(*) AS n FROM va_pageview_event WHERE ? IS NOT NULL"
    assert _parameter_types(conn, sql) == [pa.null()]
    with conn.cursor() as cursor:  # the value binds as it was sent
        cursor.execute(sql, parameters=(1,))
        assert cursor.fetchone() == (6,)


def test_a_type_without_one_arrow_type_on_both_stores_stays_the_wildcard(conn, loaded):
    sql = (
        "SELECT count(*) AS n FROM va_pageview_event "
        "WHERE CAST(? AS UUID) IS NOT NULL AND page_url = ?"
    )
    assert _parameter_types(conn, sql) == [pa.null(), pa.string()]
    with conn.cursor() as cursor:  # text for a uuid binds as sent, as before
        cursor.execute(sql, parameters=("0b6c4f3e-8a57-4a7e-9d55-2f0a1c3b4d5e", "/a"))
        assert cursor.fetchone() == (3,)


def _run(conn, parameters: tuple) -> list[str]:
    with conn.cursor() as cursor:
        cursor.execute(FILTER_SQL, parameters=parameters)
        return [row[0] for row in cursor.fetchall()]


def test_values_bind_in_the_declared_types_and_in_types_that_convert(conn, loaded):
    typed = _run(conn, ("/a", dt.date(2024, 1, 16), BASE + dt.timedelta(days=5)))
    assert typed == ["e2", "e4"]
    # Dates and times written as text (ADBC Python binds them as strings) convert.
    assert _run(conn, ("/a", "2024-01-16", "2024-01-20T10:00:00Z")) == typed
    assert _run(conn, ("/a", "2024-01-16", "2024-01-20 10:00:00")) == typed  # no zone: UTC
    # A timestamp for a date parameter converts too; re-executed with new values.
    assert _run(conn, ("/b", BASE, BASE + dt.timedelta(days=2))) == ["e1"]


@pytest.mark.parametrize(
    ("parameters", "words"),
    [
        (("/a", 20240116, BASE), r"parameter \$2 \('.*'\) is int64 20240116.*date32"),
        (
            ("/a", "2024-01-16", "next week"),
            r"parameter \$3 .*'next week'.*timestamp\[ms, tz=UTC\]",
        ),
    ],
)
def test_a_value_that_does_not_convert_is_refused_naming_parameter_and_type(
    conn, loaded, parameters, words
):
    with pytest.raises(flightsql.Error, match=r"\[parameter-type\].*" + words):
        _run(conn, parameters)
    assert _run(conn, ("/a", "2024-01-16", "2024-01-20T10:00:00Z")) == ["e2", "e4"]
