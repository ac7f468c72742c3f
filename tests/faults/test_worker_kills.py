"""Fault 1: the NATS ingest worker SIGKILLed again and again, also between commit and ack.

Whatever moment the kill lands, every published event ends up counted exactly
once, and the aggregates equal the reference recomputation of what was sent:
a redelivered message carries the same stream sequence, so the same event_id,
and dedupes.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import nats
import pytest
from flightdeck.views import StoreOptions, open_store

from tests import nats_client
from tests.services import wait_for

from .processes import Flightdeck
from .workload import (
    as_json,
    assert_exact,
    count,
    flight_query,
    pageviews,
    publish_fast,
    short_ack_wait,
)

ROOT = Path(__file__).resolve().parents[2]
KILLS = 5


def _store_query(db_url: str):
    store = open_store(StoreOptions(db=db_url))

    def run(sql: str):
        with store.read(sql) as reader:
            return reader.read_all()

    return store, run


def _ids(url: str, n: int) -> set[str]:
    first = nats_client.default_id(url, 1)
    return {first[: -len(":1")] + f":{seq}" for seq in range(1, n + 1)}


@pytest.mark.parametrize("backend", ["postgresql"])
def test_ingest_process_sigkilled_at_random_moments(db_url, nats_server, tmp_path):
    events = pageviews(12_000, seed=11)
    short_ack_wait(nats_server.url, seconds=3)
    publish_fast(nats_server.url, as_json(events))
    flags = ["--db", db_url, "--nats", nats_server.url, "--raw-retention-days", "0"]
    flags += ["--ingest-batch", "200", "--ingest-wait-ms", "20"]
    worker = Flightdeck(["ingest", *flags], tmp_path, ready="ingesting")
    rng = random.Random()
    store = None
    try:
        for _ in range(KILLS + 1):
            worker.start()
            if store is None:  # the worker applied the migrations
                store, query = _store_query(db_url)
            before = count(query)
            # Kill once this life has committed a random share of the stream, then at a
            # random moment of the commit cycle. A wall-clock delay alone let a fast
            # worker drain the whole stream before the last kills, which then tested
            # nothing (and the next life waited for a commit that never came).
            share = rng.randint(1, 600)
            assert wait_for(lambda q=query, b=before + share: count(q) >= b, timeout=30), (
                worker.log()
            )
            time.sleep(rng.uniform(0, 0.15))
            worker.kill()
            assert count(query) < len(events), "a kill landed after the stream was drained"
        worker.start()
        assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=90), worker.log()
        # Killed from outside, no message is to blame: none may be dead-lettered.
        dead = nats_client.messages(nats_server.url, "events.dead.pageview")
        assert [m.headers.get("Flightdeck-Reason") for m in dead] == [], worker.log()
        found = assert_exact(query, events)
        assert set(found.event_id) == _ids(nats_server.url, len(events))
        assert worker.kills == KILLS + 1
    finally:
        worker.stop()
        if store is not None:
            store.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_worker_sigkilled_exactly_between_commit_and_ack(db_url, nats_server, tmp_path):
    events = pageviews(6_000, seed=12)
    short_ack_wait(nats_server.url, seconds=2)
    flags = ["--db", db_url, "--nats", nats_server.url, "--raw-retention-days", "0"]
    real = Flightdeck(["ingest", *flags, "--ingest-wait-ms", "20"], tmp_path, ready="ingesting")
    real.start()  # migrates the store; then stopped, so only the stalling worker consumes
    real.stop()
    publish_fast(nats_server.url, as_json(events))  # after: the real worker took none
    store, query = _store_query(db_url)
    try:
        committed = 0
        for _ in range(KILLS):
            before = count(query)
            stalling = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.faults.stalling_worker",
                    db_url,
                    nats_server.url,
                    "400",
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert _committed_line(stalling, timeout=60), "the stalling worker never committed"
                stalling.kill()  # SIGKILL: committed, not one message acked
                stalling.wait()
            finally:
                if stalling.poll() is None:
                    stalling.kill()
                    stalling.wait()
            committed_now = count(query)
            assert committed_now >= before  # redeliveries add nothing; new messages may
            committed = committed_now
            assert nats_client.consumer(nats_server.url).num_ack_pending > 0
        assert committed < len(events)
        real.start()  # the real worker takes over and finishes
        assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=90), real.log()
        found = assert_exact(query, events)
        assert set(found.event_id) == _ids(nats_server.url, len(events))
        info = nats_client.consumer(nats_server.url)
        assert info.delivered.consumer_seq > len(events)  # killed batches came back
    finally:
        real.stop()
        store.close()


def test_serve_on_duckdb_sigkilled_with_its_embedded_nats(tmp_path):
    """The worker runs inside `serve`; its nats-server dies with it and comes back on
    the same JetStream store (on another port) when serve is started again."""
    events = pageviews(8_000, seed=13)
    flags = ["--port", "0", "--data-dir", str(tmp_path / "data"), "--raw-retention-days", "0"]
    flags += ["--ingest-batch", "500", "--ingest-wait-ms", "20"]
    serve = Flightdeck(["serve", *flags], tmp_path)
    rng = random.Random()
    try:
        serve.start()
        # The worker created its consumer; shorten its ack wait (kept across restarts).
        assert wait_for(lambda: _exists(serve.nats_url), timeout=30), serve.log()
        short_ack_wait(serve.nats_url, seconds=3)
        publish_fast(serve.nats_url, as_json(events))
        for _ in range(KILLS):
            query = flight_query(serve.location)
            before = count(query)
            assert wait_for(lambda q=query, b=before: count(q) > b, timeout=30), serve.log()
            time.sleep(rng.uniform(0, 0.4))
            serve.kill()
            serve.start()
        query = flight_query(serve.location)
        assert wait_for(lambda: nats_client.settled(serve.nats_url), timeout=90), serve.log()
        found = assert_exact(query, events)
        assert set(found.event_id) == _ids(serve.nats_url, len(events))
        assert serve.kills == KILLS
    finally:
        serve.stop()


def _committed_line(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait (with a deadline) for the child's `committed` line."""
    seen = threading.Event()

    def follow() -> None:
        for line in proc.stdout:
            if line.startswith("committed"):
                seen.set()
                return

    threading.Thread(target=follow, daemon=True).start()
    return seen.wait(timeout)


def _exists(url: str) -> bool:
    try:
        nats_client.consumer(url)
        return True
    except nats.js.errors.NotFoundError:
        return False
