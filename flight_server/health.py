"""The `health` action: is the store answering, is NATS connected, which version, how long up.

The store is probed through the same read path queries take (the PostgreSQL
read pool included), and a server whose every query slot is taken says so:
either way queries are being refused, and "ok" would be a lie.

A load balancer or an operator asks this when something may be wrong, so it
must answer even then: the store is probed with a trivial query on a thread
of its own, waited for only `timeout` seconds, and a store that fails or does
not answer makes the report "degraded" rather than the call an error. A probe
that hangs is reused by the next checks until it ends, so a dead store costs
one stuck thread, not one per check.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from flightdeck.views import Store

from .limits import Slots

__all__ = ["HEALTH_ACTION", "Health"]

HEALTH_ACTION = (
    "health",
    "Server status as one JSON result: status (ok|degraded), backend, store, nats, ingest, "
    "version, uptime_s. Empty body.",
)


class Health:
    def __init__(
        self,
        store: Store,
        version: str,
        nats_status: Callable[[], str] | None = None,
        *,
        timeout: float = 2.0,
        query_slots: Slots | None = None,
        ingest_status: Callable[[], str] | None = None,
    ) -> None:
        """`nats_status` says "connected" or "disconnected"; None: this server has no NATS.
        `ingest_status` says "ok" or which NATS batch keeps failing; None: no worker.
        `query_slots`: while every one is taken, queries are refused, so health says so."""
        self._store = store
        self._query_slots = query_slots
        self._version = version
        self._nats_status = nats_status
        self._ingest_status = ingest_status
        self.timeout = timeout
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._probe: Future[None] | None = None

    def report(self) -> dict[str, object]:
        store = self._store_state()
        nats = self._nats_status() if self._nats_status is not None else "off"
        full = self._query_slots.exhausted() if self._query_slots is not None else None
        ingest = self._ingest_status() if self._ingest_status is not None else "off"
        healthy = store == "ok" and nats != "disconnected" and full is None
        healthy = healthy and ingest in ("ok", "off")
        return {
            "status": "ok" if healthy else "degraded",
            "backend": self._store.backend,
            "store": store,
            "queries": full or "ok",
            "nats": nats,
            "ingest": ingest,
            "version": self._version,
            "uptime_s": round(time.monotonic() - self._started, 3),
        }

    def body(self) -> bytes:
        """The report as the action's one Result body."""
        return json.dumps(self.report()).encode()

    def _store_state(self) -> str:
        with self._lock:
            if self._probe is None or self._probe.done():
                self._probe = _start_probe(self._store)
            probe = self._probe
        try:
            probe.result(self.timeout)
        except FutureTimeout:
            return f"no answer within {self.timeout:g} s"
        except Exception as exc:
            return str(exc) or type(exc).__name__
        return "ok"


def _start_probe(store: Store) -> Future[None]:
    """`SELECT 1` on a daemon thread: one that never returns must not hold up exit."""
    future: Future[None] = Future()

    def probe() -> None:
        try:
            with store.read("SELECT 1 AS ok") as reader:
                reader.read_all()
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(None)

    threading.Thread(target=probe, name="flightdeck-health", daemon=True).start()
    return future
