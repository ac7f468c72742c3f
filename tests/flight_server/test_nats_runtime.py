"""The NATS runtime (background.py) when NATS is not there yet: it waits, retries
quietly, becomes ready once NATS starts, and stops cleanly while still waiting."""

from __future__ import annotations

import gc
import logging

from flightdeck.flight_server import Settings
from flightdeck.flight_server.background import Background
from flightdeck.flight_server.nats_process import NatsProcess

from tests import nats_client
from tests.services import free_port, wait_for

_EVENT = {
    "user_pk": 2,
    "session_id": "session-1",
    "page_url": "/test-page",
    "timestamp": "2024-01-15T10:00:00Z",
}


def _views(store) -> int:
    sql = "SELECT COALESCE(SUM(view_count), 0) AS n FROM va_pageview_aggregate"
    with store.read_internal(sql) as reader:
        return int(reader.read_all().column("n")[0].as_py())


def test_a_server_started_before_its_nats_is_ready_once_nats_starts(store, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="flightdeck")
    later = NatsProcess(tmp_path / "nats", port=free_port())
    settings = Settings(port=0, data_dir=tmp_path, raw_retention_days=0)
    background = Background(settings, store, later.url, worker=True).start()
    try:
        assert not background.wait_ready(1.5)  # a few failed connects by now
        assert background.nats_status() == "disconnected"
        later.start()
        assert background.wait_ready(15)
        assert background.nats_status() == "connected"
        nats_client.publish(later.url, [_EVENT])
        assert wait_for(lambda: _views(store) == 1, timeout=15)  # the worker runs
    finally:
        background.stop()
        later.stop()
    ours = [r for r in caplog.records if r.name.startswith("flightdeck")]
    noisy = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert 1 <= len(noisy) <= 2, noisy  # the first failed attempt says so, not every attempt


def test_stopping_while_nats_is_still_away_leaves_no_pending_task(store, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="asyncio")
    settings = Settings(port=0, data_dir=tmp_path, raw_retention_days=30)  # retention runs
    background = Background(settings, store, f"nats://127.0.0.1:{free_port()}", worker=True)
    assert not background.start().wait_ready(0.5)
    background.stop()
    del background
    gc.collect()  # a pending task left behind complains when it is collected
    pending = [r.getMessage() for r in caplog.records if "pending" in r.getMessage()]
    assert pending == []
