"""A query the client cancels, abandons, or lets time out stops in the store itself.

A long aggregate sends nothing until it ends, so checking for cancellation
between batches is not enough: the backend must be interrupted at once. Each
test watches the backend's own view: PostgreSQL's pg_stat_activity (the reader
role's active query), and for the in-process DuckDB this process's CPU time.
"""

from __future__ import annotations

import contextlib
import json
import resource
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

from tests.flight_server.pg_activity import active_queries
from tests.services import wait_for

# Minutes of work on either backend, and nothing to send until the very end.
SIDE = {"duckdb": 400_000, "postgresql": 25_000}
AGGREGATE = (
    "SELECT max(a.g + b.g) AS m "
    "FROM generate_series(1, {side}) AS a(g), generate_series(1, {side}) AS b(g)"
)
STOPPED_WITHIN = 3.0  # seconds: the backend is interrupted at once, this is slack


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


def _aggregate(backend: str) -> str:
    return AGGREGATE.format(side=SIDE[backend])


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_rate(window_s: float = 0.5) -> float:
    """CPU-seconds per second this process (server and DuckDB included) spends now."""
    before = _cpu_s()
    time.sleep(window_s)
    return (_cpu_s() - before) / window_s


def _idle_rate(backend: str) -> float:
    """What this process spends before the query (DuckDB): in a long test session,
    threads of earlier tests (live hubs, NATS loops) keep a little of a core busy."""
    return _cpu_rate() if backend == "duckdb" else 0.0


def _running(backend: str, db_url: str, idle: float = 0.0) -> Callable[[], bool]:
    if backend == "postgresql":
        return lambda: active_queries(db_url, "generate_series") > 0
    return lambda: _cpu_rate() > idle + 0.3  # DuckDB's workers are busy


def _stopped(backend: str, db_url: str, idle: float = 0.0) -> Callable[[], bool]:
    if backend == "postgresql":
        return lambda: active_queries(db_url, "generate_series") == 0
    return lambda: _cpu_rate() < idle + 0.15


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
        idle = _idle_rate(backend)
        with flightsql.connect(location) as connection, connection.cursor() as cursor:
            thread = _execute_in_background(cursor, _aggregate(backend))
            assert wait_for(_running(backend, db_url, idle), timeout=10), (
                "the aggregate never started"
            )

            cursor.adbc_cancel()  # as the client did
            thread.join(timeout=5)
            assert not thread.is_alive(), "the client's cancel did not end its call"
        assert wait_for(_stopped(backend, db_url, idle), timeout=STOPPED_WITHIN), (
            "the store kept running the cancelled query"
        )
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
        idle = _idle_rate(backend)
        process = subprocess.Popen(
            [sys.executable, "-c", _DISCONNECTING_CLIENT, location, _aggregate(backend)]
        )
        try:
            assert wait_for(_running(backend, db_url, idle), timeout=20), (
                "the aggregate never started"
            )
        finally:
            process.kill()  # gone without a word, as a crashed client is
            process.wait()
        assert wait_for(_stopped(backend, db_url, idle), timeout=STOPPED_WITHIN), (
            "the store kept running the query of a client that left"
        )
        _assert_serves_again(client)


def test_a_query_past_the_query_timeout_stops_in_the_store(tmp_path, backend, db_url):
    timeout_s = 2.0
    store = _open(db_url, tmp_path, statement_timeout_s=timeout_s)
    try:
        with _serving(store, tmp_path) as (_, client):
            idle = _idle_rate(backend)
            reader = client.do_get(_ticket(_aggregate(backend)))
            started = time.monotonic()
            with pytest.raises(flight.FlightError):
                reader.read_all()
            assert time.monotonic() - started < timeout_s + STOPPED_WITHIN
            assert wait_for(_stopped(backend, db_url, idle), timeout=STOPPED_WITHIN)
            _assert_serves_again(client)
    finally:
        store.close()
