"""A NATS ingest worker that dies, SIGKILLed, whenever it decodes a poisoned message.

Run as `python -m tests.faults.dying_worker DB NATS MAX_DELIVERIES`. It stands
for a message that kills the worker's process (an out-of-memory kill, a crash
in native code): the message is marked with a `Test-Poison` header, and the
worker kills itself while holding it, before any ack, exactly where a real
crash in decoding would land.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys

import nats
from flightdeck.flight_server.settings import Settings
from flightdeck.ingest.nats_worker import IngestWorker
from flightdeck.views import StoreOptions, migrations, open_store


class DiesOnPoison(IngestWorker):
    """Dies in either way the worker decodes: new messages together, or a message a
    worker died holding on its own."""

    async def _decode_new(self, messages):
        # What it decodes: the leading messages no worker died holding.
        _die_if_poisoned(list(itertools.takewhile(lambda m: self._deaths(m) == 0, messages)))
        return await super()._decode_new(messages)

    async def _decode(self, messages):
        _die_if_poisoned(messages)
        return await super()._decode(messages)


def _die_if_poisoned(messages) -> None:
    if any((m.headers or {}).get("Test-Poison") for m in messages):
        print(f"dying holding {len(messages)} messages", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


async def main(db: str, url: str, max_deliveries: int) -> None:
    store = open_store(StoreOptions(db=db))
    migrations.apply(store, migrations.load_migrations(store.backend))
    nc = await nats.connect(url)
    options = Settings(
        ingest_batch=100, ingest_wait_ms=50, ingest_ack_wait=1.0, max_deliveries=max_deliveries
    ).worker_options()
    print("ingesting", flush=True)
    await DiesOnPoison(store, nc, options).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
