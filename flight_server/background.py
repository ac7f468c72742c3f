"""A process's NATS runtime: the parts that live on its one asyncio loop thread, put together.

Each part owns one thing: `LoopThread` the loop and its thread, `NatsConnection`
the connection (credentials, retrying the first connect, logging an outage),
`set_up_streams` the JetStream streams, `RetentionJob` the hourly raw-event
retention; the ingest worker and the outbox publisher live in `ingest/`. This
class starts them in order (connect, streams, hub, publisher, worker) and stops
them in reverse. All of them retry the one way ingest/backoff.py says.

Flight handlers run on gRPC threads and stay synchronous; they reach the loop
only through the thread-safe methods below. The publisher signs live updates
and the hub verifies them with the store's key, read once here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from flightdeck.ingest import IngestResult
from flightdeck.ingest.backoff import Retry, until_done
from flightdeck.ingest.nats_worker import IngestWorker
from flightdeck.ingest.publisher import OutboxPublisher
from flightdeck.ingest.streams import EVENTS, replicated, update_log
from flightdeck.ingest.update_signature import signing_key
from flightdeck.views import Store

from .ingest_health import IngestHealth
from .live.hub import LiveHub
from .loop_thread import LoopThread
from .metrics import Metrics
from .nats_auth import NatsLogin
from .nats_connection import NatsConnection
from .retention_job import RetentionJob
from .settings import Settings
from .stream_setup import set_up_streams

__all__ = ["Background"]

log = logging.getLogger("flightdeck.background")


class Background:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        nats_url: str,
        *,
        worker: bool,
        metrics: Metrics | None = None,
        login: NatsLogin | None = None,
    ) -> None:
        """`worker`: also run the NATS ingest worker. `login`: flightdeck's own user on
        the embedded nats-server (None: an external NATS, reached as
        `settings.nats_creds` or the URL say)."""
        self._settings = settings
        self._store = store
        self._worker = worker
        self._metrics = metrics
        self._loop = LoopThread("flightdeck-nats")
        self._nats = NatsConnection(nats_url, login=login, creds=settings.nats_creds)
        self._retention = RetentionJob(store, settings.raw_retention_days)
        self._main: asyncio.Task | None = None
        self._publisher: OutboxPublisher | None = None
        self._ready = threading.Event()
        self._key = signing_key(store)
        self.hub = LiveHub(
            settings.live_buffer_rows,
            settings.max_message_bytes,
            key=self._key,
            held_limit=settings.live_held_rows,
        )
        self._update_log = replicated(update_log(settings.update_log_hours), settings.nats_replicas)
        self._events = replicated(EVENTS, settings.nats_replicas)
        self._ingest = IngestHealth(metrics.redelivered if metrics is not None else None)
        if metrics is not None:
            metrics.watch_live(self.hub)
            metrics.watch_store(store)

    def start(self) -> Background:
        self._loop.start()
        self._main = self._loop.call(self._begin())
        return self

    async def _begin(self) -> asyncio.Task:
        return asyncio.create_task(self._run())

    def wait_ready(self, timeout: float) -> bool:
        """True once NATS is connected and the streams exist (producers can publish)."""
        return self._ready.wait(timeout)

    def nats_status(self) -> str:
        """Thread-safe, read-only: "connected" or "disconnected" (for the health action)."""
        return self._nats.status()

    def ingest_status(self) -> str:
        """Thread-safe: "ok", or the NATS batch that keeps failing (for the health action)."""
        return self._ingest.status()

    def committed(self) -> None:
        """Thread-safe: a commit happened, publish its outbox entry now rather than at the sweep."""
        if self._publisher is not None:
            self._loop.poke(self._publisher.wake)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the work, close the NATS connection (unacked messages are redelivered)."""
        if self._main is not None:
            with contextlib.suppress(Exception):
                self._loop.call(self._end(self._main), timeout)
        self._loop.stop(timeout)

    async def _end(self, main: asyncio.Task) -> None:
        self._nats.closing()
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main

    async def _run(self) -> None:
        jobs = [asyncio.create_task(self._retention.run())]
        try:
            nc = await self._nats.connect()
            js = nc.jetstream()
            await set_up_streams(js, [self._update_log, self._events])
            await self._follow_updates(js)
            self._ready.set()
            self._publisher = OutboxPublisher(
                self._store, js, key=self._key, stream=self._update_log
            )
            jobs.append(asyncio.create_task(self._publisher.run()))
            if self._worker:
                jobs.append(asyncio.create_task(self._ingest_worker(nc).run()))
            await asyncio.gather(*jobs)
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await self.hub.unfollow()
            with contextlib.suppress(Exception):
                await self._nats.close()

    async def _follow_updates(self, js) -> None:
        """Follow the update log, retried: right after a restart a JetStream request may
        time out, and a hub that never follows would leave ingest unstarted, unsaid."""

        def say(retry: Retry, exc: Exception) -> None:
            log.warning(
                "cannot follow the update log yet; ingest and live updates wait "
                "failures=%d error=%r",
                retry.failures,
                exc,
            )

        await until_done(lambda: self.hub.follow(js), say)

    def _ingest_worker(self, nc) -> IngestWorker:
        return IngestWorker(
            self._store,
            nc,
            self._settings.worker_options(),
            self._on_commit,
            self._metrics.dead_lettered if self._metrics is not None else None,
            self._ingest.batch_ended,
        )

    def _on_commit(self, result: IngestResult) -> None:
        if self._metrics is not None:
            self._metrics.ingested("nats", result)
        if self._publisher is not None:
            self._publisher.wake()
