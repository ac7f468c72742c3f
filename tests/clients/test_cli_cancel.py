"""Ctrl-C on `flightdeck query` stops the query in the server's backend, not only the CLI.

The server runs in this process on either backend; the backend's own view says
whether the aggregate still runs (pg_stat_activity, DuckDB's CPU time here).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.views import StoreOptions, migrations, open_store

from tests.flight_server import long_query
from tests.services import wait_for

CLI = [sys.executable, "-m", "flightdeck.cli"]


@pytest.fixture
def serving(db_url, tmp_path):
    options = StoreOptions(db=db_url, data_dir=tmp_path, statement_timeout_s=600, pool_size=1)
    store = open_store(options)
    migrations.apply(store, migrations.load_migrations(store.backend))
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path), store)
    try:
        yield f"grpc://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        store.close()


@pytest.mark.slow  # a CLI process per backend
def test_ctrl_c_stops_the_query_in_the_backend_within_a_second(serving, backend, db_url):
    idle = long_query.idle_rate(backend)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTDECK_")}
    query = subprocess.Popen(
        [*CLI, "query", long_query.aggregate(backend), "--location", serving],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    try:
        assert wait_for(lambda: long_query.busy(backend, db_url, idle), timeout=20)
        interrupted_at = time.monotonic()
        query.send_signal(signal.SIGINT)
        took = long_query.seconds_until_idle(backend, db_url, interrupted_at, idle)
        _, err = query.communicate(timeout=5)
    finally:
        query.kill()
    assert took <= long_query.IDLE_WITHIN_S, f"the store ran the query {took:.2f} s more"
    assert query.returncode == 130, err
    assert err.strip() == "interrupted: the query was cancelled", err  # one line, no traceback
    # The server's one read connection came back clean.
    with flight.connect(serving) as client:
        ticket = flight.Ticket(b'{"v": 1, "sql": "SELECT 42 AS answer"}')
        assert client.do_get(ticket).read_all().to_pylist() == [{"answer": 42}]
