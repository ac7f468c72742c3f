"""A small synchronous NATS client for tests: what a producer or an operator would do."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Iterable
from pathlib import Path

import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy


def embedded_url(url: str, data_dir: Path, role: str = "flightdeck") -> str:
    """`url` with the login `flightdeck serve` generated for its embedded NATS under
    `data_dir` ("flightdeck": its own, every right; "writer": publish events only);
    `url` unchanged when there is none (an external NATS)."""
    from flightdeck.flight_server.nats_auth import NatsAuth

    auth = NatsAuth.read(Path(data_dir) / "nats")
    if auth is None:
        return url
    login = auth.login(role)
    return url.replace("nats://", f"nats://{login.user}:{login.password}@", 1)


async def add_old_consumer(js: JetStreamContext, max_ack_pending: int, ack_wait: float) -> None:
    """The durable consumer an older flightdeck (or an operator) made: page views only."""
    config = ConsumerConfig(
        name="flightdeck-ingest",
        durable_name="flightdeck-ingest",
        ack_policy=AckPolicy.EXPLICIT,
        max_ack_pending=max_ack_pending,
        ack_wait=ack_wait,
        filter_subject="events.pageview",
    )
    await js.add_consumer("EVENTS", config)


def publish(
    url: str,
    payloads: Iterable[bytes | dict],
    subject: str = "events.pageview",
    headers: dict | None = None,
) -> None:
    """Publish to JetStream and wait for each ack, as a careful producer does."""

    async def go() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        for p in payloads:
            data = json.dumps(p).encode() if isinstance(p, dict) else p
            await js.publish(subject, data, headers=headers)
        await nc.close()

    asyncio.run(go())


def messages(url: str, subject: str, timeout: float = 1.0) -> list:
    """Every message retained on `subject`, oldest first."""

    async def go() -> list:
        nc = await nats.connect(url)
        js = nc.jetstream()
        sub = await js.subscribe(subject, deliver_policy=DeliverPolicy.ALL, ordered_consumer=True)
        out = []
        while True:
            try:
                out.append(await sub.next_msg(timeout))
            except nats.errors.TimeoutError:
                break
        await nc.close()
        return out

    return asyncio.run(go())


def consumer(url: str, stream: str = "EVENTS", name: str = "flightdeck-ingest") -> ConsumerInfo:
    async def go() -> ConsumerInfo:
        nc = await nats.connect(url)
        info = await nc.jetstream().consumer_info(stream, name)
        await nc.close()
        return info

    return asyncio.run(go())


def settled(url: str) -> bool:
    """The worker's durable consumer exists and has every message delivered and acked."""
    try:
        info = consumer(url)
    except nats.js.errors.NotFoundError:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


def purge(url: str, stream: str) -> None:
    """Drop every message of `stream`, as retention eventually does."""

    async def go() -> None:
        nc = await nats.connect(url)
        await nc.jetstream().purge_stream(stream)
        await nc.close()

    asyncio.run(go())


def default_id(url: str, sequence: int, stream: str = "EVENTS") -> str:
    """The event_id the worker gives an event without one, in message `sequence` of
    `stream` as it is now: its creation time in microseconds, then the sequence."""

    async def go() -> datetime.datetime:
        nc = await nats.connect(url)
        info = await nc.jetstream().stream_info(stream)
        await nc.close()
        return info.created

    created = asyncio.run(go())
    micros = (created - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)).total_seconds()
    return f"nats:{stream}:{round(micros * 1_000_000)}:{sequence}"
