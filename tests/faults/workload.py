"""The events the fault tests send, how they send them fast, and the exactness check."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from collections.abc import Callable

import nats
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.ingest.nats_worker import DURABLE
from flightdeck.ingest.streams import EVENT_SUBJECT, EVENTS, ensure_stream
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from tests import reference

BASE = dt.datetime(2024, 3, 4, tzinfo=dt.UTC)
# Read a view or query: a function of SQL text, returning the whole result.
Query = Callable[[str], pa.Table]


def pageviews(n: int, seed: int, *, prefix: str | None = None) -> pa.Table:
    """`n` page views over 2 days, 12 pages and n/4 sessions (so bounces and spans vary).

    With `prefix`, each event has an event_id `prefix-i`; without, NATS derives one.
    """
    rng = random.Random(seed)
    sessions = max(1, n // 4)
    columns = {
        "session_id": [f"s{seed}-{rng.randrange(sessions)}" for _ in range(n)],
        "page_url": [f"/page/{rng.randrange(12)}" for _ in range(n)],
        "recorded_at": pa.array(
            [BASE + dt.timedelta(seconds=rng.randrange(2 * 86_400)) for _ in range(n)],
            pa.timestamp("us", "UTC"),
        ),
    }
    if prefix is not None:
        columns = {"event_id": [f"{prefix}-{i}" for i in range(n)], **columns}
    return pa.table(columns)


def as_json(events: pa.Table) -> list[bytes]:
    """The seed's JSON message shape, one message per event."""
    return [
        json.dumps(
            {
                "session_id": row["session_id"],
                "page_url": row["page_url"],
                "timestamp": row["recorded_at"].isoformat().replace("+00:00", "Z"),
            }
        ).encode()
        for row in events.to_pylist()
    ]


def publish_fast(url: str, payloads: list[bytes], window: int = 5000) -> None:
    """Publish to JetStream, `window` messages at a time, and wait for every ack.

    One request per message (js.publish) tops out near 5 k/s in nats-py; core
    publishes with one shared reply inbox, counted per window, are several
    times faster and still confirm that the stream stored each message.
    """

    async def go() -> None:
        nc = await nats.connect(url)
        await ensure_stream(nc.jetstream(), EVENTS)
        acked = 0
        target = 0
        refused: list[bytes] = []
        done = asyncio.Event()

        async def on_ack(msg) -> None:
            nonlocal acked
            if b'"error"' in msg.data:
                refused.append(msg.data)
            acked += 1
            if acked >= target:
                done.set()

        inbox = nc.new_inbox()
        await nc.subscribe(inbox, cb=on_ack, pending_msgs_limit=2 * window)
        for start in range(0, len(payloads), window):
            chunk = payloads[start : start + window]
            target = start + len(chunk)
            done.clear()
            for payload in chunk:
                await nc.publish(EVENT_SUBJECT, payload, reply=inbox)
            await asyncio.wait_for(done.wait(), 60)
        await nc.close()
        assert not refused, refused[:3]

    asyncio.run(go())


def short_ack_wait(url: str, seconds: float = 5.0, batch: int = 5000) -> None:
    """Create (or edit) the worker's durable consumer with a short ack wait, as an
    operator may: messages a killed worker left unacked come back in seconds, not a minute.
    Everything else is what the worker itself would create."""

    async def go() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await ensure_stream(js, EVENTS)
        config = ConsumerConfig(
            name=DURABLE,
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=seconds,
            max_ack_pending=max(4 * batch, 1000),
            max_deliver=-1,
            filter_subject=EVENT_SUBJECT,
        )
        await js.add_consumer(EVENTS.name, config)
        await nc.close()

    asyncio.run(go())


def flight_query(location: str) -> Query:
    """Run SQL over Flight on a fresh connection (the server may have been restarted)."""

    def run(sql: str) -> pa.Table:
        with flight.connect(location) as client:
            info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
            return client.do_get(info.endpoints[0].ticket).read_all()

    return run


def count(query: Query, where: str = "") -> int:
    sql = f"SELECT count(*) AS n FROM va_pageview_event {where}"
    return query(sql).column("n")[0].as_py()


def assert_exact(query: Query, expected: pa.Table | None = None) -> pd.DataFrame:
    """Daily and hourly aggregates equal the reference recomputation of `expected`
    (default: of the raw events the store holds). Returns the raw events."""
    raw = query("SELECT event_id, session_id, page_url, recorded_at FROM va_pageview_event")
    events = raw.to_pandas()
    assert events.event_id.is_unique
    truth = events if expected is None else expected.to_pandas()
    if expected is not None:
        assert len(events) == len(truth), (len(events), len(truth))
    daily = query(
        "SELECT page_url, date, view_count, unique_visitors, bounce_rate, "
        "avg_session_duration FROM va_pageview_aggregate"
    ).to_pandas()
    hourly = query(
        "SELECT page_url, hour, view_count, unique_visitors FROM va_pageview_hourly"
    ).to_pandas()
    reference.assert_matches(daily, hourly, truth)
    return events
