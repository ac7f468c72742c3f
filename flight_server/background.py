"""A process's background work, on one asyncio loop thread that owns the NATS connection.

Flight handlers run on gRPC threads and stay synchronous; they only poke this
loop (`committed()`) through the thread-safe entry points. On the loop: the
NATS connection (reconnecting forever), the ingest worker, the outbox
publisher and the periodic raw-event retention.

The publisher signs live updates and the hub verifies them with the store's
key, read once here. An outage of NATS is logged when it starts, now and then
while it lasts, and when it ends, not at every reconnect attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import nats
from flightdeck.ingest import IngestResult, retention
from flightdeck.ingest.nats_worker import IngestWorker
from flightdeck.ingest.publisher import OutboxPublisher
from flightdeck.ingest.streams import EVENTS, ensure_stream, update_log
from flightdeck.ingest.update_signature import signing_key
from flightdeck.views import Store

from .ingest_health import IngestHealth
from .live.hub import LiveHub
from .log_limit import LogLimit
from .metrics import Metrics
from .nats_auth import INTERNAL_INBOX, NatsLogin
from .settings import Settings

__all__ = ["Background"]

log = logging.getLogger("flightdeck.background")

_RETENTION_EVERY_S = 3600.0


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
        """`login`: flightdeck's own user on the embedded nats-server (None: an
        external NATS, reached as `settings.nats_creds` or the URL say)."""
        self._settings = settings
        self._store = store
        self._url = nats_url
        self._worker = worker
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="flightdeck-nats")
        self._main: asyncio.Task | None = None
        self._publisher: OutboxPublisher | None = None
        self._ready = threading.Event()
        self._stopping = False
        self._login = login
        self._errors = LogLimit()
        self._key = signing_key(store)
        self.hub = LiveHub(settings.live_buffer_rows, settings.max_message_bytes, key=self._key)
        self._update_log = update_log(settings.update_log_hours)
        self._nc: nats.NATS | None = None
        self._metrics = metrics
        self._ingest = IngestHealth(metrics.redelivered if metrics is not None else None)
        if metrics is not None:
            metrics.watch_live(self.hub)

    def start(self) -> Background:
        self._thread.start()
        self._main = self._on_loop(self._begin())
        return self

    def _on_loop(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _begin(self) -> asyncio.Task:
        return asyncio.create_task(self._run())

    def wait_ready(self, timeout: float) -> bool:
        """True once NATS is connected and the streams exist (producers can publish)."""
        return self._ready.wait(timeout)

    def nats_status(self) -> str:
        """Thread-safe, read-only: "connected" or "disconnected" (for the health action)."""
        nc = self._nc
        return "connected" if nc is not None and nc.is_connected else "disconnected"

    def ingest_status(self) -> str:
        """Thread-safe: "ok", or the NATS batch that keeps failing (for the health action)."""
        return self._ingest.status()

    def committed(self) -> None:
        """Thread-safe: a commit happened, publish its outbox entry now rather than at the sweep."""
        if self._publisher is not None:
            self._loop.call_soon_threadsafe(self._publisher.wake)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the work, close the NATS connection (unacked messages are redelivered)."""
        if self._main is not None:
            with contextlib.suppress(Exception):
                self._on_loop(self._end(self._main), timeout)
            # Store work handed to threads (an ingest, a retention pass) finishes
            # before we return: the caller closes the store next.
            with contextlib.suppress(Exception):
                self._on_loop(self._loop.shutdown_default_executor(), timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()

    async def _disconnected(self) -> None:
        if not self._stopping:  # closing it ourselves is no news
            log.warning("nats disconnected; reconnecting")
            self._errors.admit()  # the errors of reconnect attempts that follow are this news

    async def _reconnected(self) -> None:
        log.info("nats reconnected (%d errors while away not logged)", self._errors.settle())

    async def _error(self, exc: Exception) -> None:
        held = self._errors.admit()
        if held is not None and not self._stopping:
            more = f" ({held} more since the last such line)" if held else ""
            log.warning("nats error=%r%s", exc, more)

    async def _end(self, main: asyncio.Task) -> None:
        self._stopping = True
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main

    async def _run(self) -> None:
        jobs = [asyncio.create_task(self._retention())]
        nc = self._nc = await self._connect()
        try:
            js = nc.jetstream()
            await self._ensure_streams(js)
            await self.hub.follow(js)
            self._ready.set()
            self._publisher = OutboxPublisher(
                self._store, js, key=self._key, stream=self._update_log
            )
            jobs.append(asyncio.create_task(self._publisher.run()))
            if self._worker:
                worker = IngestWorker(
                    self._store,
                    nc,
                    self._settings.worker_options(),
                    self._on_commit,
                    self._metrics.dead_lettered if self._metrics is not None else None,
                    self._ingest.batch_ended,
                )
                jobs.append(asyncio.create_task(worker.run()))
            await asyncio.gather(*jobs)
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await self.hub.unfollow()
            with contextlib.suppress(Exception):
                await nc.close()

    async def _ensure_streams(self, js) -> None:
        """Both streams exist before we say ready; a server without JetStream is retried, loudly."""
        failures = 0
        while True:
            try:
                await ensure_stream(js, self._update_log)
                await ensure_stream(js, EVENTS)
                return
            except Exception as exc:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.error("cannot create JetStream streams (is JetStream on?) error=%r", exc)
                await asyncio.sleep(min(0.2 * failures, 5.0))

    def _on_commit(self, result: IngestResult) -> None:
        if self._metrics is not None:
            self._metrics.ingested("nats", result)
        if self._publisher is not None:
            self._publisher.wake()

    async def _connect(self) -> nats.NATS:
        """Connect, retrying until NATS is there; afterwards nats-py reconnects by itself."""
        failures = 0
        while True:
            try:
                nc = await nats.connect(
                    self._url.split(","),  # a cluster: nats://a:4222,nats://b:4222
                    name="flightdeck",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._error,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    **self._credentials(),
                )
                log.info("nats connected url=%s", self._url)
                return nc
            except (OSError, nats.errors.Error, TimeoutError) as exc:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning("nats unreachable, retrying url=%s error=%r", self._url, exc)
                await asyncio.sleep(min(0.2 * failures, 5.0))

    def _credentials(self) -> dict:
        if self._login is not None:  # the embedded nats-server: our own user and inbox
            return {
                "user": self._login.user,
                "password": self._login.password,
                "inbox_prefix": INTERNAL_INBOX,
            }
        # An external NATS: its own accounts govern who may publish events and read updates.
        credentials = self._settings.nats_creds
        return {"user_credentials": str(credentials)} if credentials else {}

    async def _retention(self) -> None:
        days = self._settings.raw_retention_days
        while days > 0:
            try:
                expired = await asyncio.to_thread(retention.delete_expired, self._store, days)
                if expired is not None and expired.deleted:
                    log.info(
                        "retention deleted=%d before=%s", expired.deleted, expired.horizon.date()
                    )
            except Exception as exc:  # the store may be briefly away; try at the next round
                log.warning("retention failed error=%r", exc)
            await asyncio.sleep(_RETENTION_EVERY_S)
