"""The outbox publisher sends a commit's rows without waiting for the store's writer.

Deleting a sent outbox entry is a write; on DuckDB it waits for the one writer
turn, which ingest holds for a whole put. Publishing must not wait behind it,
or every live update lags by a put or two (both backends).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import nats
import pyarrow as pa
import pytest
from flightdeck.ingest import ingest
from flightdeck.ingest.publisher import OutboxPublisher, updates_for
from flightdeck.ingest.streams import AGGREGATE_SUBJECT, AGGREGATES, ensure_stream

from tests import nats_client
from tests.services import wait_for

pytestmark = pytest.mark.slow  # servers and long queries per test: make test runs them


def _outbox(store) -> list[int]:
    sql = "SELECT version FROM tb_aggregate_outbox ORDER BY version"
    with store.read_internal(sql) as reader:
        return reader.read_all().column("version").to_pylist()


@contextlib.contextmanager
def _writer_busy(store):
    """Another writer in a transaction, as ingest is in the middle of a put: on DuckDB
    it holds the writer turn; on PostgreSQL it holds the outbox rows' locks."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.write() as conn, conn.cursor() as cursor:
            if store.backend == "postgresql":
                cursor.execute("SELECT version FROM tb_aggregate_outbox FOR UPDATE")
                cursor.fetchall()
            holding.set()
            release.wait(60)
            conn.rollback()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        release.set()
        thread.join()


def _puts() -> list[pa.Table]:
    return [
        pa.table({"session_id": [s], "page_url": [f"/{s}"], "recorded_at": ["2024-02-01"]})
        for s in ("s1", "s2")  # other rows each: neither commit's rows overwrite the other's
    ]


def test_commits_are_published_while_another_writer_holds_the_store(store, nats_server):
    versions = [ingest(store, table.to_batches()).version for table in _puts()]
    expected = [version for version in versions for _ in updates_for(store, version)]

    def published() -> list:
        return nats_client.messages(nats_server.url, AGGREGATE_SUBJECT, timeout=0.3)

    async def publish_while_busy() -> None:
        nc = await nats.connect(nats_server.url)
        await ensure_stream(nc.jetstream(), AGGREGATES)
        publisher = OutboxPublisher(store, nc.jetstream(), key=b"k" * 32, sweep_s=0.2)
        running = asyncio.get_running_loop().create_task(publisher.run())
        try:
            with _writer_busy(store):
                sent = await asyncio.to_thread(
                    wait_for, lambda: len(published()) == len(expected), 10
                )
                assert sent, "nothing published while another writer held the store"
                assert _outbox(store) == versions  # cleared only once the writer is done
            cleared = await asyncio.to_thread(wait_for, lambda: _outbox(store) == [], 10)
            assert cleared, "the sent entry stayed in the outbox"
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            await nc.close()

    asyncio.run(publish_while_busy())
    sent = sorted(int(m.headers["Flightdeck-Version"]) for m in published())
    assert sent == expected  # none sent twice by the sweeps meanwhile
