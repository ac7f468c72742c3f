"""A NATS ingest worker that says when it has committed, then stalls before acking.

Run as `python -m tests.faults.stalling_worker DB_URL NATS_URL BATCH`: the
parent SIGKILLs it on the `committed` line, so the kill lands exactly between
the commit and the acks, the window where a crash must not double-count.
"""

from __future__ import annotations

import asyncio
import sys

import nats
from flightdeck.flight_server.settings import Settings
from flightdeck.ingest.nats_worker import IngestWorker
from flightdeck.views import StoreOptions, open_store


class StallBeforeAck(IngestWorker):
    async def _acknowledge(self, messages) -> None:
        print(f"committed {len(messages)}", flush=True)
        await asyncio.sleep(3600)  # the parent kills us here


async def main(db: str, url: str, batch: int) -> None:
    store = open_store(StoreOptions(db=db))
    nc = await nats.connect(url)
    print("ingesting", flush=True)
    await StallBeforeAck(
        store, nc, Settings(ingest_batch=batch, ingest_wait_ms=20).worker_options()
    ).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
