"""What nats-py itself can receive: `python -m benchmarks.nats_receive [EVENTS] [ROUNDS]`.

The NATS target (issue 18) asks one worker for 50 k events/s. This measures the
part of that path no worker code can shorten: JetStream deliveries of the
realistic stream's JSON messages received by nats-py through flightdeck's
Puller (one callback subscription, batched pull requests) and acked in bulk,
with no decoding and no store. Two rows a round, interleaved:

- `receive+ack`: fetch batches and ack them, as the worker does;
- `receive`: fetch only, on a consumer that needs no acks (AckPolicy none).

Each round publishes EVENTS messages first, then times the drain alone, so the
publisher does not share the two cores with the receiver.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nats
from flightdeck.flight_server import Settings
from flightdeck.flight_server.nats_process import NatsProcess
from flightdeck.ingest.pull import Puller, ack_all
from flightdeck.ingest.streams import EVENTS, ensure_stream
from nats.js.api import AckPolicy, ConsumerConfig

from . import stream

_BATCH = Settings().ingest_batch  # what the worker fetches at most


async def _drain(url: str, durable: str, ack: bool, n: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    policy = AckPolicy.EXPLICIT if ack else AckPolicy.NONE
    await js.add_consumer(
        EVENTS.name, ConsumerConfig(durable_name=durable, ack_policy=policy, max_ack_pending=-1)
    )
    puller = await Puller(nc, EVENTS.name, durable).start()
    got = 0
    started = time.perf_counter()
    while got < n:
        batch = await puller.fetch(_BATCH, 5.0, 0.005)
        if ack:
            await ack_all(nc, batch)
        got += len(batch)
    seconds = time.perf_counter() - started
    await puller.close()
    await js.delete_consumer(EVENTS.name, durable)
    await nc.close()
    return seconds


async def _publish(url: str, messages: list[bytes]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.purge_stream(EVENTS.name)
    for i, message in enumerate(messages):
        await nc.publish("events.pageview", message)
        if i % 5000 == 4999:
            await nc.flush()
    await nc.flush()
    while (await js.stream_info(EVENTS.name)).state.messages < len(messages):
        await asyncio.sleep(0.02)
    await nc.close()


async def _setup(url: str) -> None:
    nc = await nats.connect(url)
    await ensure_stream(nc.jetstream(), EVENTS)
    await nc.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    messages = stream.json_messages(stream.EventStream(7).take(n).events)
    rates: dict[str, list[float]] = {"receive+ack": [], "receive": []}
    with tempfile.TemporaryDirectory() as root, NatsProcess(Path(root)) as server:
        asyncio.run(_setup(server.url))
        for r in range(rounds):
            for name, ack in (("receive+ack", True), ("receive", False)):
                asyncio.run(_publish(server.url, messages))
                seconds = asyncio.run(_drain(server.url, f"bench{r}{int(ack)}", ack, n))
                rates[name].append(n / seconds)
                print(f"round {r + 1} {name}: {n / seconds:,.0f} events/s", flush=True)
    for name, values in rates.items():
        print(
            f"{name}: median {statistics.median(values):,.0f} events/s "
            f"({min(values):,.0f}-{max(values):,.0f})"
        )


if __name__ == "__main__":
    main()
