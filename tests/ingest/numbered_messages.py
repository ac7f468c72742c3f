"""Numbered messages waiting for a durable consumer of the events stream: what the puller reads.

The puller tests (test_pull.py, test_deliveries.py) need the same stream and an
explicit-ack consumer; only the consumer's name, the ack wait and the count differ.
"""

from __future__ import annotations

import nats
from flightdeck.ingest.streams import EVENTS, ensure_consumer, ensure_stream
from nats.js.api import AckPolicy, ConsumerConfig

SUBJECT = "events.pageview"


async def numbered_messages(nc: nats.NATS, consumer: str, count: int, ack_wait: float) -> None:
    """The events stream, durable `consumer` on it, and messages b"0" … b"count-1" stored."""
    js = nc.jetstream()
    await ensure_stream(js, EVENTS)
    config = ConsumerConfig(
        name=consumer,
        durable_name=consumer,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        filter_subject=SUBJECT,
    )
    await ensure_consumer(js, EVENTS.name, config)
    for i in range(count):
        await js.publish(SUBJECT, str(i).encode())  # acked: stored before the test reads
