"""The hub's replay against a real nats-server that stops answering (a JetStream
leader election looks like this to a client): it waits, then resyncs; never fails."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import nats
import pytest
from flightdeck.flight_server import Settings
from flightdeck.flight_server.live.hub import LiveHub
from flightdeck.flight_server.live.request import parse_subscription
from flightdeck.ingest.streams import AGGREGATE_SUBJECT, ensure_stream, update_log
from flightdeck.views.live_views import LIVE_KEYS

from tests.flight_server.test_live_parts import SCHEMAS
from tests.frozen import frozen


@pytest.fixture
def hub(nats_server):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def follow():
        connection = await nats.connect(nats_server.url)
        js = connection.jetstream()
        await ensure_stream(js, update_log(1.0))
        await js.publish(AGGREGATE_SUBJECT, b"not signed: skipped by the replay")
        await hub.follow(js)
        return connection

    hub = LiveHub(buffer_keys=10, max_update_bytes=Settings().max_message_bytes, key=b"k" * 32)
    connection = asyncio.run_coroutine_threadsafe(follow(), loop).result(20)
    yield hub
    asyncio.run_coroutine_threadsafe(connection.close(), loop).result(20)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _subscription():
    request = {"subscribe": "va_pageview_aggregate", "snapshot": False, "cursor": 0}
    return parse_subscription(json.dumps(request).encode(), SCHEMAS, LIVE_KEYS)


def test_a_replay_reads_the_log_when_it_answers(hub):
    assert hub.replay(_subscription(), 0, 1, budget_s=5).num_rows == 0  # only an unsigned one


def test_a_log_silent_past_the_budget_is_a_resync_not_an_error(hub, nats_server):
    with frozen(nats_server.pid):
        started = time.monotonic()
        assert hub.replay(_subscription(), 0, 1, budget_s=3) is None
        assert time.monotonic() - started < 8  # the budget, plus at most one backoff step
