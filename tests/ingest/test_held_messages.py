"""Messages a worker went away holding, on both backends, with a real nats-server.

After a plain crash they are handled together under group markers (attempts.py),
not one at a time with three round trips each: that took a loaded machine over
30 s for the 2,000 messages a killed `serve` held, with no commit and no word
(issue 22, item 6). Only messages a worker also went away handling together
are handled alone. A worker that can finish no batch says why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re

import nats
import pytest
from flightdeck.flight_server import Settings
from flightdeck.ingest.attempts import Attempts
from flightdeck.ingest.nats_worker import DURABLE, IngestWorker
from flightdeck.ingest.pull import Puller, stream_sequence
from flightdeck.ingest.streams import EVENTS, ensure_stream, stream_identity

from tests import nats_client

pytestmark = pytest.mark.slow  # each starts a nats-server and waits out an ack wait
HELD = 300


def _events(n: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "session_id": f"s{i % 40}",
                "page_url": f"/p{i % 7}",
                "timestamp": "2024-03-04T10:00:00Z",
            }
        ).encode()
        for i in range(n)
    ]


async def _die_holding(url: str, *, mark_group: bool = False) -> None:
    """A worker that fetched every message and went away before acking any (and, with
    `mark_group`, while handling them together)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    puller = await Puller(nc, EVENTS.name, DURABLE).start()
    held = []
    while len(held) < HELD:
        held += await puller.fetch(HELD - len(held), 5.0, 0.05)
    if mark_group:
        identity = stream_identity(await ensure_stream(js, EVENTS))
        attempts = await Attempts(js).open(identity)
        await attempts.begin_group([stream_sequence(m) for m in held])
    await nc.close()  # gone: no ack, no nak; back after the ack wait


def _run(
    url: str,
    store,
    options,
    *,
    mark_group: bool = False,
    die_first: bool = True,
    worker: type[IngestWorker] = IngestWorker,
) -> None:
    """Publish HELD events, have a worker die holding them (unless not `die_first`),
    then run `worker` until every message is acked."""

    async def go() -> None:
        nc = await nats.connect(url)
        await (await worker(store, nc, options)._subscribe()).close()  # stream and consumer
        for payload in _events(HELD):
            await nc.jetstream().publish("events.pageview", payload)
        if die_first:
            await _die_holding(url, mark_group=mark_group)
        task = asyncio.create_task(worker(store, nc, options).run())
        deliveries = (2 if die_first else 1) * HELD
        for _ in range(600):
            info = await nc.jetstream().consumer_info(EVENTS.name, DURABLE)
            delivered = info.delivered.consumer_seq >= deliveries
            if info.num_ack_pending == 0 and info.num_pending == 0 and delivered:
                break
            await asyncio.sleep(0.1)
        task.cancel()
        await nc.close()

    asyncio.run(go())


def _decoded(said: str, how: str) -> int:
    """How many messages the worker said it decoded `how` (in one batch or several)."""
    return sum(int(n) for n in re.findall(rf"decoded (\d+) messages {how}", said))


def _count(store) -> int:
    with store.read("SELECT count(*) AS n FROM va_pageview_event") as reader:
        return reader.read_all().column("n")[0].as_py()


def _options(**changes):
    options = Settings(ingest_batch=500, ingest_wait_ms=50, ingest_ack_wait=1.0).worker_options()
    return dataclasses.replace(options, **changes)


def test_messages_a_crashed_worker_held_are_handled_together(store, nats_server, caplog):
    caplog.set_level(logging.INFO, logger="flightdeck.ingest-worker")
    _run(nats_server.url, store, _options())
    assert _count(store) == HELD
    assert "one at a time" not in caplog.text
    assert _decoded(caplog.text, "together") >= HELD
    # The dead worker's delivery and one more: a commit slower than this 1 s ack wait
    # (a loaded machine, PostgreSQL) is kept from redelivery by in-progress acks.
    assert nats_client.consumer(nats_server.url).delivered.consumer_seq == 2 * HELD


def test_messages_a_worker_died_handling_together_are_then_handled_alone(
    store, nats_server, caplog
):
    caplog.set_level(logging.INFO, logger="flightdeck.ingest-worker")
    _run(nats_server.url, store, _options(), mark_group=True)
    assert _count(store) == HELD
    assert _decoded(caplog.text, "one at a time") == HELD


@pytest.mark.parametrize("backend", ["duckdb"])  # the worker's own doing: one store is enough
def test_a_worker_that_can_finish_no_batch_says_why(store, nats_server, caplog):
    """Every message unacked in a dead worker's hands at max_ack_pending, for a
    long ack wait: the live worker can fetch nothing, and warns naming the limit."""
    caplog.set_level(logging.WARNING, logger="flightdeck.ingest-worker")

    async def go() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await ensure_stream(js, EVENTS)
        await nats_client.add_old_consumer(js, max_ack_pending=HELD, ack_wait=120.0)
        for payload in _events(HELD + 50):
            await js.publish("events.pageview", payload)
        worker = IngestWorker(store, nc, _options(stall_warn_s=0.5))
        await _die_holding(nats_server.url)
        task = asyncio.create_task(worker.run())
        for _ in range(300):
            if "max_ack_pending reached" in caplog.text:
                break
            await asyncio.sleep(0.1)
        task.cancel()
        await nc.close()

    asyncio.run(go())
    assert "ingest worker finished no batch for" in caplog.text
    assert f"unacked={HELD} max_ack_pending={HELD}" in caplog.text
    assert "max_ack_pending reached" in caplog.text
    assert _count(store) == 0


class _SlowCommit(IngestWorker):
    """Commits only after three ack waits, as a big batch on a loaded machine may."""

    async def _commit(self, decoded):
        await asyncio.sleep(6.0)
        return await super()._commit(decoded)


def test_a_commit_slower_than_the_ack_wait_is_not_redelivered_meanwhile(store, nats_server):
    options = _options(ack_wait_s=2.0)
    _run(nats_server.url, store, options, die_first=False, worker=_SlowCommit)
    assert _count(store) == HELD
    consumer = nats_client.consumer(nats_server.url)
    assert (consumer.delivered.consumer_seq, consumer.num_redelivered) == (HELD, 0)
