"""The Flight query path end to end, on both backends: a real server, a real client."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest

from tests.conftest import insert
from tests.seed import AGGREGATES, HOURLY, events

EXPECTED_SCHEMAS = {
    "va_pageview_aggregate": pa.schema(
        [
            ("page_url", pa.string()),
            ("date", pa.date32()),
            ("view_count", pa.int64()),
            ("unique_visitors", pa.int64()),
            ("bounce_rate", pa.float64()),
            ("avg_session_duration", pa.float64()),
            ("computed_at", pa.timestamp("us", "UTC")),
            ("version", pa.int64()),
        ]
    ),
    "va_pageview_hourly": pa.schema(
        [
            ("page_url", pa.string()),
            ("hour", pa.timestamp("us", "UTC")),
            ("view_count", pa.int64()),
            ("unique_visitors", pa.int64()),
            ("version", pa.int64()),
        ]
    ),
    "va_pageview_event": pa.schema(
        [
            ("event_id", pa.string()),
            ("session_id", pa.string()),
            ("page_url", pa.string()),
            ("recorded_at", pa.timestamp("us", "UTC")),
            ("user_id", pa.string()),
            ("referrer", pa.string()),
            ("user_agent", pa.string()),
            ("duration_s", pa.float64()),
            ("properties", pa.string()),
        ]
    ),
}


@pytest.fixture
def seeded(store):
    insert(store, "tb_pageview_aggregate", AGGREGATES)
    insert(store, "tb_pageview_hourly", HOURLY)
    insert(store, "tb_pageview_event", events(100))
    return store


def _names(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema]


def _same_types(actual: pa.Schema, expected: pa.Schema) -> None:
    assert _names(actual) == _names(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.type == e.type, f"{a.name}: {a.type} != {e.type}"


def test_list_flights_lists_the_views_with_schemas(client):
    infos = {i.descriptor.path[0].decode(): i for i in client.list_flights()}
    assert set(infos) == {*EXPECTED_SCHEMAS, "va_event"}
    for name, info in infos.items():
        if name not in EXPECTED_SCHEMAS:
            continue  # va_event: tests/ingest/test_typed_events.py
        _same_types(info.schema, EXPECTED_SCHEMAS[name])
        assert info.descriptor.descriptor_type == flight.DescriptorType.PATH


def test_path_descriptor_streams_the_whole_view(client, seeded):
    info = client.get_flight_info(flight.FlightDescriptor.for_path("va_pageview_aggregate"))
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert table.schema.equals(info.schema)
    expected = AGGREGATES
    key = [("page_url", "ascending"), ("date", "ascending")]
    assert table.sort_by(key).to_pylist() == expected.sort_by(key).to_pylist()


def test_seed_client_snippet_works_unchanged(client, seeded):
    descriptor = flight.FlightDescriptor.for_command(
        b"SELECT page_url, date, view_count, unique_visitors, bounce_rate "
        b"FROM va_pageview_aggregate ORDER BY view_count DESC LIMIT 100"
    )
    info = client.get_flight_info(descriptor)
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert table.column("view_count").to_pylist() == [300, 120, 50, 7]
    assert table.column("page_url").to_pylist() == ["/products", "/home", "/home", "/about"]
    assert table.column("bounce_rate").to_pylist() == [12.5, 25.0, 33.33, 100.0]


def test_sql_results_are_computed_by_the_store(client, seeded):
    sql = (
        "WITH daily AS (SELECT page_url, sum(view_count) AS views FROM va_pageview_aggregate "
        "GROUP BY page_url) SELECT d.page_url, d.views, h.view_count AS hour_views "
        "FROM daily d LEFT JOIN va_pageview_hourly h ON h.page_url = d.page_url "
        "ORDER BY d.page_url, h.view_count"
    )
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    rows = client.do_get(info.endpoints[0].ticket).read_all().to_pylist()
    assert rows == [
        {"page_url": "/about", "views": 7, "hour_views": None},
        {"page_url": "/home", "views": 170, "hour_views": 50},
        {"page_url": "/home", "views": 170, "hour_views": 70},
        {"page_url": "/products", "views": 300, "hour_views": None},
    ]


def test_flight_info_schema_equals_stream_schema(client, seeded):
    for sql in [
        "SELECT * FROM va_pageview_event",
        "SELECT count(*) AS n, max(recorded_at) AS last FROM va_pageview_event",
        "SELECT hour, page_url FROM va_pageview_hourly",
    ]:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
        table = client.do_get(info.endpoints[0].ticket).read_all()
        assert table.schema.equals(info.schema), sql
        assert client.get_schema(flight.FlightDescriptor.for_command(sql.encode())).schema.equals(
            info.schema
        )


def test_event_view_exports_raw_events(client, seeded):
    table = client.do_get(flight.Ticket(b"va_pageview_event")).read_all()
    assert table.num_rows == 100
    assert sorted(table.column("event_id").to_pylist()) == sorted(f"evt-{i}" for i in range(100))
    _same_types(table.schema, EXPECTED_SCHEMAS["va_pageview_event"])


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_large_result_streams_batch_by_batch_intact(client, store):
    n = 1_200_000
    insert(store, "tb_pageview_event", events(n))
    sql = b"SELECT event_id, duration_s FROM va_pageview_event"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql))
    reader = client.do_get(info.endpoints[0].ticket)
    rows = batches = total = 0
    for chunk in reader:
        batch = chunk.data
        assert 0 < batch.num_rows <= 65_536
        assert batch.nbytes <= 3 * 1024 * 1024
        batches += 1
        rows += batch.num_rows
        total += pc.sum(batch.column("duration_s")).as_py()
    assert rows == n
    assert batches >= n // 65_536
    assert total == sum(i & 63 for i in range(n))


def test_unknown_view_is_not_found_and_lists_views(client):
    with pytest.raises(KeyError) as err:
        client.get_flight_info(flight.FlightDescriptor.for_path("va_nope"))
    message = str(err.value)
    assert "va_nope" in message and "va_pageview_aggregate" in message


def test_unknown_view_in_sql_is_not_found(client):
    with pytest.raises(KeyError, match="va_nope"):
        client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT * FROM va_nope"))


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        (b"SELECT * FROM tb_pageview_event", "va-views-only"),
        (b"DROP VIEW va_pageview_event", "read-only"),
        (b"SELECT 1; SELECT 2", "single-statement"),
        (b"SELECT * FROM read_csv('/etc/passwd')", "forbidden-function"),
        (b"", "empty"),
    ],
)
def test_refused_sql_is_invalid_argument_naming_the_rule(client, sql, rule):
    with pytest.raises(pa.ArrowInvalid, match=rule):
        client.get_flight_info(flight.FlightDescriptor.for_command(sql))


def test_what_duckdb_would_read_past_the_guard_is_refused(client, backend):
    if backend != "duckdb":
        pytest.skip("DuckDB's engine check; PostgreSQL's wall is its least-privilege role")
    # The guard accepts these harmless-looking built-in macros; DuckDB's plan shows that
    # they read its catalog (duckdb_types(), pragma_database_size()).
    for sql in (b"SELECT format_type(23, NULL) AS t", b"SELECT get_block_size('x') AS b"):
        with pytest.raises(pa.ArrowInvalid, match=r"engine-check.*(duckdb_types|database_size)"):
            client.get_flight_info(flight.FlightDescriptor.for_command(sql))
        forged = json.dumps({"v": 1, "sql": sql.decode()}).encode()
        with pytest.raises(pa.ArrowInvalid, match="engine-check"):
            client.do_get(flight.Ticket(forged)).read_all()
    assert client.do_get(flight.Ticket(b"va_pageview_hourly")).read_all().num_rows == 0


def test_a_forged_ticket_is_checked_again(client, seeded):
    forged = json.dumps({"v": 1, "sql": "SELECT * FROM tb_pageview_event"}).encode()
    with pytest.raises(pa.ArrowInvalid, match="va-views-only"):
        client.do_get(flight.Ticket(forged)).read_all()
    with pytest.raises(pa.ArrowInvalid, match="ticket"):
        client.do_get(flight.Ticket(b"\x00garbage")).read_all()


def test_backend_error_carries_its_reason_and_server_keeps_serving(client, seeded):
    with pytest.raises(pa.ArrowInvalid) as err:
        client.get_flight_info(
            flight.FlightDescriptor.for_command(b"SELECT no_such_column FROM va_pageview_event")
        )
    assert "no_such_column" in str(err.value)
    table = client.do_get(flight.Ticket(b"va_pageview_hourly")).read_all()
    assert table.num_rows == 2


def test_runtime_error_mid_stream_is_reported(client, seeded):
    # Passes planning, fails while rows are produced: the client must hear why.
    sql = b"SELECT CAST(page_url AS INTEGER) AS n FROM va_pageview_event"
    with pytest.raises(pa.ArrowException) as err:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(sql))
        client.do_get(info.endpoints[0].ticket).read_all()
    assert "page" in str(err.value).lower() or "integer" in str(err.value).lower()
    assert client.do_get(flight.Ticket(b"va_pageview_hourly")).read_all().num_rows == 2


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_abandoned_streams_release_their_connections(client, store):
    insert(store, "tb_pageview_event", events(300_000))
    for _ in range(12):  # more than the pool holds: a leak would hang here
        reader = client.do_get(flight.Ticket(b"va_pageview_event"))
        reader.read_chunk()
        reader.cancel()
    assert client.do_get(flight.Ticket(b"va_pageview_hourly")).read_all().num_rows == 0


def test_error_messages_carry_no_server_traceback(client):
    # pyarrow would append the handler's traceback (file paths, line numbers) to
    # the gRPC message that JDBC and ADBC users read.
    refusals = [
        lambda: client.get_flight_info(flight.FlightDescriptor.for_command(b"DROP TABLE x")),
        lambda: client.get_flight_info(flight.FlightDescriptor.for_path("va_nope")),
        lambda: list(client.do_action(flight.Action("BeginTransaction", b""))),
    ]
    for refuse in refusals:
        with pytest.raises(pa.ArrowException) as err:
            refuse()
        assert "Traceback" not in str(err.value)
        assert ".py" not in str(err.value)


def test_missing_column_named_timeout_is_invalid_argument(client, seeded):
    # Found as a DuckDB Binder Error answered TIMED_OUT: the word, not the error, decided.
    sql = b"SELECT timeout FROM va_pageview_event"
    with pytest.raises(pa.ArrowInvalid, match="timeout"):
        client.get_flight_info(flight.FlightDescriptor.for_command(sql))
