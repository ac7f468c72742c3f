"""Query text size, and store work outside DoGet, on both backends through a real server.

The size limit (--max-query-kb) holds on every way SQL text arrives: a plain
command, Flight SQL statements, prepared statements and their handles, and
tickets. Schemas that need the query to run (DuckDB learns `SELECT ?`'s types
only by running it) run under the query timeout and hold a query slot.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.flight_sql import messages as pb
from flightdeck.flight_server.flight_sql.commands import pack
from flightdeck.flight_server.flight_sql.prepared import Handle
from flightdeck.views import Store, StoreOptions, migrations, open_store

LONG_SQL = "SELECT 1 AS x WHERE 1 IN (" + ",".join(["1"] * 1500) + ")"  # about 3 KB
BIG = b"SELECT * FROM generate_series(1, 3000000) AS t(n)"  # outlasts gRPC's buffers


@pytest.fixture
def quick_store(db_url: str, tmp_path) -> Iterator[Store]:
    """A migrated store whose queries time out after 1 s (the store owns the timeout)."""
    store = open_store(StoreOptions(db=db_url, data_dir=tmp_path, statement_timeout_s=1.0))
    migrations.apply(store, migrations.load_migrations(store.backend))
    yield store
    store.close()


@contextlib.contextmanager
def _serving(store, tmp_path, **options) -> Iterator[flight.FlightClient]:
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path, **options), store)
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            yield client
    finally:
        server.shutdown()


def _cmd(message) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(pack(message))


def _refusals(client: flight.FlightClient) -> dict[str, object]:
    """Every way a client can hand the server SQL text, each with LONG_SQL."""
    prepare = flight.Action(
        "CreatePreparedStatement",
        pack(pb.ActionCreatePreparedStatementRequest(query=LONG_SQL)),
    )
    handle = json.dumps({"sql": LONG_SQL, "id": "0"}).encode()
    ticket = flight.Ticket(json.dumps({"v": 1, "sql": LONG_SQL}).encode())
    command = flight.FlightDescriptor.for_command(LONG_SQL.encode())
    return {
        "plain GetFlightInfo": lambda: client.get_flight_info(command),
        "plain GetSchema": lambda: client.get_schema(command),
        "Flight SQL statement": lambda: client.get_flight_info(
            _cmd(pb.CommandStatementQuery(query=LONG_SQL))
        ),
        "CreatePreparedStatement": lambda: list(client.do_action(prepare)),
        "prepared handle": lambda: client.get_flight_info(
            _cmd(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle))
        ),
        "ticket": lambda: client.do_get(ticket).read_all(),
    }


def test_every_way_in_refuses_text_over_the_limit(store, tmp_path):
    with _serving(store, tmp_path, max_query_kb=2) as client:
        for path, call in _refusals(client).items():
            with pytest.raises(pa.ArrowInvalid, match=r"\[query-size\]") as err:
                call()
            assert "--max-query-kb" in str(err.value), path
            assert "2 KB" in str(err.value), path
        # The same text is fine under a larger limit: it is the size that was refused.
        short = flight.FlightDescriptor.for_command(b"SELECT 1 AS x")
        assert client.get_flight_info(short).schema.names == ["x"]
    with _serving(store, tmp_path, max_query_kb=4) as client:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(LONG_SQL.encode()))
        assert client.do_get(info.endpoints[0].ticket).read_all().num_rows == 1


def test_deep_nesting_is_a_clean_refusal_at_the_client(client):
    deep = "SELECT " + "(" * 1000 + "1" + ")" * 1000
    with pytest.raises(pa.ArrowInvalid, match=r"\[too-complex\]"):
        client.get_flight_info(flight.FlightDescriptor.for_command(deep.encode()))
    unary = "SELECT " + "NOT " * 1000 + "true"
    with pytest.raises(pa.ArrowInvalid, match=r"\[too-complex\]"):
        client.get_flight_info(_cmd(pb.CommandStatementQuery(query=unary)))
    assert client.do_get(flight.Ticket(b"va_pageview_hourly")).read_all().num_rows == 0


def _handle_with(sql: str, value: int) -> bytes:
    parameters = pa.record_batch([pa.array([value], pa.int64())], names=["p"])
    return Handle(sql, "slow", parameters).encode()


@pytest.mark.timeout(120)
def test_a_schema_that_runs_the_query_stops_at_the_query_timeout(quick_store, tmp_path):
    # DuckDB cannot describe `range(?)` without running it: a sum over 10^12 rows.
    handle = _handle_with(
        "SELECT sum(g % 7) AS n FROM generate_series(1, CAST(? AS BIGINT)) AS t(g)", 10**12
    )
    descriptor = _cmd(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle))
    with _serving(quick_store, tmp_path, query_timeout=1.0) as client:
        started = time.monotonic()
        with contextlib.suppress(flight.FlightTimedOutError):
            # PostgreSQL describes it without running it; DuckDB is interrupted.
            client.get_flight_info(descriptor, flight.FlightCallOptions(timeout=60))
        assert time.monotonic() - started < 20, "the schema ran past the query timeout"
        assert client.do_get(flight.Ticket(b"va_pageview_hourly")).read_all().num_rows == 0


def test_a_schema_takes_a_query_slot(store, tmp_path):
    with _serving(store, tmp_path, max_queries=1) as client:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(BIG))
        first = client.do_get(info.endpoints[0].ticket)
        try:
            first.read_chunk()  # holds the one slot while we do not read on
            handle = _handle_with("SELECT CAST(? AS BIGINT) + 1 AS n", 1)
            with pytest.raises(flight.FlightUnavailableError, match="--max-queries"):
                client.get_flight_info(
                    _cmd(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle))
                )
            # pyarrow's GetSchema reports any handler error as UNKNOWN; the words stay.
            with pytest.raises(pa.ArrowException, match="--max-queries"):
                client.get_schema(flight.FlightDescriptor.for_command(b"SELECT 1 AS x"))
        finally:
            first.cancel()
