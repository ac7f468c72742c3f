"""What an operator reads in the log as clients come and go and the server stops:
only news. An ADBC disconnect is not a refusal; a clean stop leaves no task behind."""

from __future__ import annotations

import gc
import logging
import warnings

import adbc_driver_flightsql.dbapi as flightsql
from flightdeck.flight_server import Settings
from flightdeck.flight_server.background import Background


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
