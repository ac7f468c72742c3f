"""A message that kills the worker's process is dead-lettered after a bounded number
of deliveries, instead of crash-looping the worker; its neighbours are ingested.

The worker here (`dying_worker.py`) is SIGKILLed whenever it decodes the poisoned
message, as an out-of-memory kill would do. Each death leaves every message it
held unacked; JetStream redelivers them after the ack wait to the next worker.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from flightdeck.views import StoreOptions, open_store

from tests import nats_client

from .workload import short_ack_wait

ROOT = Path(__file__).resolve().parents[2]
MAX_DELIVERIES = 3


def _event(page: str, i: int) -> bytes:
    event = {"session_id": f"s{i}", "page_url": page, "timestamp": f"2024-01-15T10:0{i}:00Z"}
    return json.dumps(event).encode()


def _life(db_url: str, url: str, timeout: float = 60.0) -> bool:
    """Run one worker until it dies (True) or has settled every message (False)."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.dying_worker", db_url, url, str(MAX_DELIVERIES)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                assert worker.returncode == -signal.SIGKILL, worker.returncode
                return True
            if nats_client.settled(url):
                time.sleep(0.5)  # a death after settling would still be a death
                if worker.poll() is None:
                    return False
            time.sleep(0.1)
        raise AssertionError("the worker neither died nor settled")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_message_that_kills_the_worker_is_dead_lettered_after_bounded_deliveries(
    db_url, nats_server
):
    url = nats_server.url
    short_ack_wait(url, seconds=1)  # a dead worker's messages come back in a second
    nats_client.publish(url, [_event("/before", i) for i in range(3)])
    poison = _event("/poison", 0)
    nats_client.publish(url, [poison], headers={"Test-Poison": "1"})
    nats_client.publish(url, [_event("/after", i) for i in range(3)])

    deaths = 0
    while _life(db_url, url):
        deaths += 1
        assert deaths <= MAX_DELIVERIES + 2, "the poisoned message crash-loops the worker"
    assert deaths == MAX_DELIVERIES

    (dead,) = nats_client.messages(url, "events.dead.pageview")
    assert dead.data == poison
    reason = dead.headers["Flightdeck-Reason"]
    assert reason.startswith("[redelivered]") and "--max-deliveries" in reason, reason
    store = open_store(StoreOptions(db=db_url))
    try:
        with store.read_internal(
            "SELECT page_url FROM tb_pageview_event ORDER BY page_url"
        ) as reader:
            pages = reader.read_all().column("page_url").to_pylist()
    finally:
        store.close()
    assert pages == ["/after"] * 3 + ["/before"] * 3  # its neighbours, each once
