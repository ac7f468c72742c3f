"""Send what each commit changed to NATS: the outbox, drained in version order.

Every ingest commit leaves an outbox entry with its version. The publisher
reads the aggregate rows carrying that version, publishes them as Arrow IPC to
`analytics.aggregate.updated` with `Nats-Msg-Id` derived from the version
(JetStream drops a re-send after a crash), and only then deletes the entry.
So a crash between commit and publish delays an update; it never loses one.
Each message is signed (update_signature.py): live hubs take nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import pyarrow as pa
from flightdeck.views import Store
from flightdeck.views.live_views import live_keys
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from .backoff import Backoff
from .live_removals import removal_views, removed_keys
from .messages import ARROW_CONTENT_TYPE
from .streams import AGGREGATE_SUBJECT, AGGREGATES, ensure_stream
from .update_signature import KIND_HEADER, SIGNATURE_HEADER, sign

__all__ = ["OutboxPublisher", "Update", "updates_for"]

log = logging.getLogger("flightdeck.publisher")

# NATS refuses payloads over 1 MiB by default; stay well under it.
_MAX_PAYLOAD = 512 * 1024


@dataclass(frozen=True)
class Update:
    """One NATS message: some rows of one view changed by one version."""

    view: str
    version: int
    part: int
    parts: int
    payload: bytes  # Arrow IPC stream
    kind: str = "update"  # or "remove": the payload holds the keys of deleted rows

    @property
    def headers(self) -> dict[str, str]:
        headers = {
            "Nats-Msg-Id": f"{self.view}:{self.version}:{self.part}",
            "Content-Type": ARROW_CONTENT_TYPE,
            "Flightdeck-View": self.view,
            "Flightdeck-Version": str(self.version),
            "Flightdeck-Part": f"{self.part}/{self.parts}",
        }
        if self.kind != "update":  # an update's headers stay as they were before removes
            headers["Nats-Msg-Id"] = f"{self.view}:{self.version}:{self.kind}:{self.part}"
            headers[KIND_HEADER] = self.kind
        return headers

    def signed_headers(self, key: bytes) -> dict[str, str]:
        """`headers` and the signature over them and the payload, made with `key`."""
        headers = self.headers
        signature = sign(key, AGGREGATE_SUBJECT, headers, self.payload)
        return {**headers, SIGNATURE_HEADER: signature}


def updates_for(store: Store, version: int) -> list[Update]:
    """The messages that carry every row `version` wrote (none when a later one overwrote all),
    then the keys of rows it deleted (live_removals.py)."""
    updates = []
    removing = removal_views(store, version)
    for view, keys in live_keys(store).items():
        sql = f"SELECT * FROM {view} WHERE version = {int(version)}"
        with store.read_internal(sql) as reader:
            payloads = [_ipc(piece) for batch in reader for piece in _pieces(batch)]
        updates += [
            Update(view, version, i, len(payloads), p) for i, p in enumerate(payloads, start=1)
        ]
        if view not in removing:  # the common case: one query per version, not per view
            continue
        gone = removed_keys(store, view, keys, version)
        removed = [_ipc(piece) for batch in gone.to_batches() for piece in _pieces(batch)]
        updates += [
            Update(view, version, i, len(removed), p, "remove")
            for i, p in enumerate(removed, start=1)
        ]
    return updates


def _pieces(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
    if batch.num_rows == 0:
        return []
    rows = max(1, batch.num_rows * _MAX_PAYLOAD // max(batch.nbytes, 1))
    return [batch.slice(start, rows) for start in range(0, batch.num_rows, rows)]


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


class OutboxPublisher:
    """Runs on the process's NATS loop; `wake()` after a commit, and it sweeps anyway.
    `key` signs every message (update_signature.signing_key(store))."""

    def __init__(
        self,
        store: Store,
        js: JetStreamContext,
        *,
        key: bytes,
        sweep_s: float = 1.0,
        stream: StreamConfig = AGGREGATES,
    ) -> None:
        self._store = store
        self._js = js
        self._key = key
        self._stream = stream
        self._sweep_s = sweep_s
        self._wake = asyncio.Event()
        self._sent: set[int] = set()  # published, still in the outbox until _retire deletes them
        self._retiring: asyncio.Task | None = None

    def wake(self) -> None:
        """Call on the loop's thread (other threads: `loop.call_soon_threadsafe(wake)`)."""
        self._wake.set()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if self._retiring is not None:
                self._retiring.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._retiring

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            # Cleared before looking, so a commit that lands while we publish wakes us again.
            self._wake.clear()
            try:
                await self.publish_pending()
                backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or the store away: the outbox keeps it for later
                retry = backoff.failed()
                if retry.log:
                    log.warning(
                        "publish failed, will retry failures=%d error=%r", retry.failures, exc
                    )
                await asyncio.sleep(retry.delay)
                with contextlib.suppress(Exception):  # a NATS without storage lost the stream
                    await ensure_stream(self._js, self._stream)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sweep_s)

    async def publish_pending(self) -> int:
        """Publish every outbox entry not yet sent, oldest first; returns how many were sent.
        Sent entries are deleted from the outbox afterwards, off this path (`_retire`)."""
        pending = await asyncio.to_thread(self._pending)
        versions = [version for version in pending if version not in self._sent]
        for version in versions:
            updates = await asyncio.to_thread(updates_for, self._store, version)
            for update in updates:
                await self._js.publish(
                    AGGREGATE_SUBJECT,
                    update.payload,
                    stream=AGGREGATES.name,
                    headers=update.signed_headers(self._key),
                )
            self._sent.add(version)
            log.debug("published version=%d messages=%d", version, len(updates))
        if self._sent and (self._retiring is None or self._retiring.done()):
            self._retiring = asyncio.get_running_loop().create_task(self._retire())
        return len(versions)

    async def _retire(self) -> None:
        """Delete sent entries from the outbox. Deleting is a write: on DuckDB it waits
        for the writer turn, which ingest holds for a whole put, and publishing behind
        it held every update back by a put or two. A crash before the delete sends an
        entry again, which JetStream drops (Nats-Msg-Id) and hubs ignore (version)."""
        try:
            while self._sent:
                versions = sorted(self._sent)[:1000]  # one bounded statement at a time
                await asyncio.to_thread(self._done, versions)
                self._sent.difference_update(versions)
        except Exception as exc:  # the store away: the next publish_pending retires them
            log.warning("could not clear published outbox entries, will retry error=%r", exc)

    def _pending(self) -> list[int]:
        sql = "SELECT version FROM tb_aggregate_outbox ORDER BY version"
        with self._store.read_internal(sql) as reader:
            return reader.read_all().column("version").to_pylist()

    def _done(self, versions: list[int]) -> None:
        listed = ", ".join(str(int(v)) for v in versions)
        with self._store.write() as conn, conn.cursor() as cursor:
            cursor.execute(f"DELETE FROM tb_aggregate_outbox WHERE version IN ({listed})")
            cursor.execute(f"DELETE FROM tb_live_removal WHERE version IN ({listed})")
            conn.commit()
