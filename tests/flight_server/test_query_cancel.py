"""A query the client cancels, abandons, or lets time out stops in the store itself.

A long aggregate sends nothing until it ends, so checking for cancellation
between batches is not enough: the backend must be interrupted at once. Each
test watches the backend's own view: PostgreSQL's pg_stat_activity (the reader
role's active query), and for the in-process DuckDB this process's CPU time.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.views import Store, StoreOptions, migrations, open_store

from tests.flight_server import long_query
from tests.services import wait_for


@pytest.fixture
def long_store(db_url: str, tmp_path) -> Iterator[Store]:
    """One read connection, so a query that is not given back clean shows at once."""
    store = _open(db_url, tmp_path, statement_timeout_s=600)
    yield store
    store.close()


def _open(db_url: str, tmp_path, statement_timeout_s: float) -> Store:
    options = StoreOptions(
        db=db_url, data_dir=tmp_path, statement_timeout_s=statement_timeout_s, pool_size=1
    )
    store = open_store(options)
    migrations.apply(store, migrations.load_migrations(store.backend))
    return store


@contextlib.contextmanager
def _serving(store: Store, tmp_path) -> Iterator[tuple[FlightdeckServer, flight.FlightClient]]:
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path), store)
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            yield server, client
    finally:
        server.shutdown()


def _ticket(sql: str) -> flight.Ticket:
    return flight.Ticket(json.dumps({"v": 1, "sql": sql}).encode())


def _running(backend: str, db_url: str, idle: float = 0.0) -> Callable[[], bool]:
    return lambda: long_query.busy(backend, db_url, idle)


def _assert_idle_within_a_second(backend: str, db_url: str, since: float, idle: float) -> None:
    took = long_query.seconds_until_idle(backend, db_url, since, idle)
    assert took <= long_query.IDLE_WITHIN_S, f"the store ran the query {took:.2f} s more"


def _assert_serves_again(client: flight.FlightClient) -> None:
    """The one read connection came back clean: the next query runs and answers."""
    table = client.do_get(_ticket("SELECT 42 AS answer")).read_all()
    assert table.column("answer").to_pylist() == [42]


def _execute_in_background(cursor: flightsql.Cursor, sql: str) -> threading.Thread:
    def execute() -> None:
        with contextlib.suppress(flightsql.Error):
            cursor.execute(sql)
            cursor.fetchall()

    thread = threading.Thread(target=execute, daemon=True)
    thread.start()
    return thread


def test_a_cancelled_query_stops_in_the_store(long_store, tmp_path, backend, db_url):
    with _serving(long_store, tmp_path) as (server, client):
        location = f"grpc://127.0.0.1:{server.port}"
        idle = long_query.idle_rate(backend)
        with flightsql.connect(location) as connection, connection.cursor() as cursor:
            thread = _execute_in_background(cursor, long_query.aggregate(backend))
            assert wait_for(_running(backend, db_url, idle), timeout=10), (
                "the aggregate never started"
            )

            cancelled_at = time.monotonic()
            cursor.adbc_cancel()  # as the client did
            _assert_idle_within_a_second(backend, db_url, cancelled_at, idle)
            thread.join(timeout=5)
            assert not thread.is_alive(), "the client's cancel did not end its call"
        _assert_serves_again(client)


_DISCONNECTING_CLIENT = """
import json, sys
import pyarrow.flight as flight
client = flight.connect(sys.argv[1])
ticket = flight.Ticket(json.dumps({"v": 1, "sql": sys.argv[2]}).encode())
client.do_get(ticket).read_all()
"""


def test_a_query_whose_client_disconnects_stops_in_the_store(long_store, tmp_path, backend, db_url):
    with _serving(long_store, tmp_path) as (server, client):
        location = f"grpc://127.0.0.1:{server.port}"
        idle = long_query.idle_rate(backend)
        process = subprocess.Popen(
            [sys.executable, "-c", _DISCONNECTING_CLIENT, location, long_query.aggregate(backend)]
        )
        try:
            assert wait_for(_running(backend, db_url, idle), timeout=20), (
                "the aggregate never started"
            )
        finally:
            process.kill()  # gone without a word, as a crashed client is
            process.wait()
        _assert_idle_within_a_second(backend, db_url, time.monotonic(), idle)
        _assert_serves_again(client)


def test_a_query_past_the_query_timeout_stops_in_the_store(tmp_path, backend, db_url):
    timeout_s = 2.0
    store = _open(db_url, tmp_path, statement_timeout_s=timeout_s)
    try:
        with _serving(store, tmp_path) as (_, client):
            idle = long_query.idle_rate(backend)
            reader = client.do_get(_ticket(long_query.aggregate(backend)))
            started = time.monotonic()
            with pytest.raises(flight.FlightError):
                reader.read_all()
            assert time.monotonic() - started < timeout_s + long_query.IDLE_WITHIN_S + 1
            _assert_idle_within_a_second(backend, db_url, time.monotonic(), idle)
            _assert_serves_again(client)
    finally:
        store.close()
