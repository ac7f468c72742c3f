"""Fault 2: nats-server SIGKILLed and restarted in the middle of a 100k-event JetStream ingest.

The nats-server keeps JetStream on files, so published messages survive the
kill; it comes back on the same port and store. The worker (inside `serve`)
reconnects by itself, and every event is ingested exactly once.
"""

from __future__ import annotations

import logging
import time

import nats
import pytest
from flightdeck.flight_server import Settings
from flightdeck.flight_server.background import Background

from tests import nats_client
from tests.services import free_port, wait_for

from .processes import Flightdeck, KillableNats
from .workload import (
    as_json,
    assert_exact,
    count,
    flight_query,
    pageviews,
    publish_fast,
    short_ack_wait,
)

EVENTS = 100_000


@pytest.fixture
def killable_nats(tmp_path):
    server = KillableNats(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


def _settled(url: str) -> bool:
    try:
        info = nats_client.consumer(url)
    except (nats.errors.Error, OSError):
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


def test_nats_server_killed_mid_ingest_of_100k_events(backend, db_url, killable_nats, tmp_path):
    events = pageviews(EVENTS, seed=21)
    store = ["--db", db_url] if backend == "postgresql" else ["--data-dir", str(tmp_path / "d")]
    flags = ["--port", "0", "--nats", killable_nats.url, "--raw-retention-days", "0"]
    serve = Flightdeck(["serve", *flags, *store], tmp_path)
    restarted = None
    try:
        # Messages in flight at the kill come back after the ack wait: seconds, not a minute.
        short_ack_wait(killable_nats.url, seconds=5)
        publish_fast(killable_nats.url, as_json(events))
        serve.start()
        query = flight_query(serve.location)
        assert wait_for(lambda: count(query) >= EVENTS // 5, timeout=60), serve.log()
        killable_nats.kill()
        assert count(query) < EVENTS  # killed mid-ingest
        port = killable_nats.port
        restarted = KillableNats(killable_nats.store_dir, port=port).start()
        assert wait_for(lambda: count(query) == EVENTS, timeout=120), serve.log()
        assert wait_for(lambda: _settled(restarted.url), timeout=30), serve.log()
        found = assert_exact(query, events)
        prefix = nats_client.default_id(restarted.url, 1)[: -len(":1")]
        assert set(found.event_id) == {f"{prefix}:{seq}" for seq in range(1, EVENTS + 1)}
        assert serve.running()  # the worker resumed by itself
        assert any("nats disconnected" in line for line in serve.lines)
        # The worker lived through the outage: what it held comes back in batches,
        # not one message at a time as after a worker's death.
        assert not any("one at a time" in line for line in serve.lines), serve.log()
    finally:
        serve.stop()
        if restarted is not None:
            restarted.stop()


def test_a_long_nats_outage_logs_a_few_lines_not_one_per_attempt(
    store, killable_nats, tmp_path, caplog
):
    """nats-py retries every half second while NATS is away; the log says so once
    (and again now and then), not at every attempt, and says when it is back."""
    settings = Settings(data_dir=tmp_path, raw_retention_days=0)
    background = Background(settings, store, killable_nats.url, worker=True).start()
    restarted = None
    try:
        assert background.wait_ready(10)
        with caplog.at_level(logging.INFO, logger="flightdeck"):
            killable_nats.kill()
            time.sleep(4.0)  # eight reconnect attempts
            restarted = KillableNats(killable_nats.store_dir, port=killable_nats.port).start()
            assert wait_for(lambda: background.nats_status() == "connected", timeout=30)
            # The client says it is connected before its reconnect callback (which
            # logs) has run on the loop thread: wait for the line, do not race it.
            assert wait_for(lambda: _logged(caplog, "reconnected"), timeout=10)
        ours = [r for r in caplog.records if r.name.startswith("flightdeck")]
        noisy = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
        assert 1 <= len(noisy) <= 3, noisy
    finally:
        background.stop()
        if restarted is not None:
            restarted.stop()


def _logged(caplog, words: str) -> bool:
    return any(
        words in r.getMessage() for r in list(caplog.records) if r.name.startswith("flightdeck")
    )


def test_serve_started_before_its_nats_answers_queries_then_ingests(backend, db_url, tmp_path):
    """README "Start in any order": queries work while NATS is away; ingest begins once
    it answers, with no restart of the server."""
    later = KillableNats(tmp_path / "nats", port=free_port())
    store = ["--db", db_url] if backend == "postgresql" else ["--data-dir", str(tmp_path / "d")]
    flags = ["--port", "0", "--nats", later.url, "--raw-retention-days", "0"]
    serve = Flightdeck(["serve", *flags, *store], tmp_path)
    try:
        serve.start()
        query = flight_query(serve.location)
        assert count(query) == 0  # answered while NATS is still away
        assert any("nats not reachable yet" in line for line in serve.lines), serve.log()
        later.start()
        events = pageviews(50, seed=5)
        publish_fast(later.url, as_json(events))
        assert wait_for(lambda: count(query) == 50, timeout=60), serve.log()
        assert_exact(query, events)
    finally:
        serve.stop()
        later.stop()
