"""What an operator reads in the log as clients come and go and the server stops:
only news. An ADBC disconnect is not a refusal; a clean stop leaves no task behind."""

from __future__ import annotations

import gc
import logging
import threading
import warnings

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow.flight as flight
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.background import Background

from tests.services import wait_for


def test_an_adbc_disconnect_is_not_logged_as_a_refusal(server, caplog):
    caplog.set_level(logging.INFO, logger="flightdeck")
    with warnings.catch_warnings():  # the driver's own note that it has no transactions
        warnings.simplefilter("ignore")
        with flightsql.connect(f"grpc://127.0.0.1:{server.port}") as conn:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1 AS one")
                assert cursor.fetchall() == [(1,)]
    # The driver sends CloseSession as it closes; the server answers it.
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == []


def test_stopping_the_nats_work_leaves_no_pending_task(store, nats_server, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="asyncio")
    settings = Settings(port=0, data_dir=tmp_path)
    background = Background(settings, store, nats_server.url, worker=True)
    assert background.start().wait_ready(10)
    background.stop()
    del background
    gc.collect()  # a pending task left behind complains when it is collected
    pending = [r.getMessage() for r in caplog.records if "pending" in r.getMessage()]
    assert pending == []


def test_shutdown_says_what_it_waits_for_and_stops_waiting(store, tmp_path, caplog):
    # A query that runs far longer than the grace: the server says it waits for it,
    # then interrupts it rather than waiting for --query-timeout.
    caplog.set_level(logging.INFO, logger="flightdeck")
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path), store)
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    running = threading.Event()
    outcome: list[BaseException] = []

    def query() -> None:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(_ENDLESS))
        running.set()
        try:
            client.do_get(info.endpoints[0].ticket).read_all()
        except flight.FlightError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=query)
    thread.start()
    assert running.wait(30)
    assert wait_for(lambda: server.running_queries() == 1, 30)
    server.shutdown(grace_s=1.0)
    thread.join(30)
    client.close()
    said = [r.getMessage() for r in caplog.records]
    assert any("waiting up to 1 s for 1 running query" in line for line in said), said
    assert any("interrupting" in line for line in said), said
    assert outcome, "the query was cut off with an error"


# A value from each of 10^10 rows: no store can shortcut it, and it runs for minutes.
_ENDLESS = (
    b"SELECT max(a.x * b.x + a.x) AS m "
    b"FROM generate_series(1, 100000) AS a(x), generate_series(1, 100000) AS b(x)"
)
