"""Prometheus metrics of one server process, in its own registry, on their own HTTP port.

Each `Metrics` owns a `CollectorRegistry` rather than using prometheus_client's
global one, so several servers in one process (tests, embedding) never collide.
What is counted, and where it is fed in:

- every RPC, by a Flight server middleware (method, final gRPC status, latency);
- ingested rows, by the server's one ingest entry point (DoPut, Flight SQL) and
  by the NATS worker's commit callback, so `ingest/` never imports this module;
- dead-lettered NATS messages, by the worker's dead-letter callback;
- NATS messages handed back for redelivery, by the worker's batch-end callback;
- live subscribers, their unsent rows and the updates dropped for a bad
  signature, read from the hub at scrape time;
- the embedded store's cache (DuckDB's buffer manager), read at scrape time, so
  a rising RSS can be told apart from it.

With auth on, a scrape must authenticate like a Flight call (a bearer token of
any role, e.g. Prometheus' `authorization` setting): the endpoint then listens
where Flight does, and answers no one else.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pyarrow.flight as flight
from flightdeck.views import BackendError
from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer

__all__ = ["INGEST_SOURCES", "Metrics", "MetricsEndpoint"]

INGEST_SOURCES = ("doput", "flight_sql", "nats")

# From a cache hit to a long export; live subscriptions (DoExchange) land in +Inf.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Ingested(Protocol):
    accepted: int
    duplicates: int


class _Authenticates(Protocol):
    def authenticate(self, authorization: str | None) -> object: ...


class _Memory(Protocol):
    def memory_bytes(self) -> int | None: ...


class _Live(Protocol):
    rejected: int  # updates dropped for a bad signature

    @property
    def subscribers(self) -> int: ...
    def pending_rows(self) -> list[int]: ...


class Metrics:
    """The metrics of one server process; thread-safe, cheap to update from any thread."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "flightdeck_rpc_requests",
            "Flight RPCs completed, by method and final gRPC status",
            ["method", "status"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "flightdeck_rpc_duration_seconds",
            "Flight RPC time from start to completion, whole stream included",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._rows = Counter(
            "flightdeck_ingest_rows",
            "Event rows ingested, by entry point; duplicates were already stored",
            ["source", "outcome"],
            registry=self.registry,
        )
        self._dead = Counter(
            "flightdeck_dead_letters",
            "NATS messages that could never be ingested, sent to the dead-letter subject",
            registry=self.registry,
        )
        self._redeliveries = Counter(
            "flightdeck_ingest_redeliveries",
            "NATS messages handed back for redelivery: their batch could not be committed",
            registry=self.registry,
        )
        # Zeros from the start: rate() needs a first sample before the first ingest.
        for source in INGEST_SOURCES:
            for outcome in ("accepted", "duplicate"):
                self._rows.labels(source, outcome)
        self._live = _LiveCollector()
        self.registry.register(self._live)
        self._store = _StoreCollector()
        self.registry.register(self._store)

    def instrument(
        self, middleware: dict[str, flight.ServerMiddlewareFactory]
    ) -> dict[str, flight.ServerMiddlewareFactory]:
        """FlightServerBase's `middleware=`: the per-RPC counter and timer first, as
        "metrics", then `middleware`, each wrapped so that a call it refuses (auth)
        is counted too: pyarrow tells no other middleware about a refused call."""
        rpc = _RpcMetricsFactory(self._requests, self._duration)
        wrapped = {key: _CountRefusals(factory, rpc) for key, factory in middleware.items()}
        return {"metrics": rpc, **wrapped}

    def ingested(self, source: str, result: _Ingested) -> None:
        """One committed ingest of `source` (one of INGEST_SOURCES)."""
        self._rows.labels(source, "accepted").inc(result.accepted)
        self._rows.labels(source, "duplicate").inc(result.duplicates)

    def dead_lettered(self, reason: str = "") -> None:
        """One message sent to the dead-letter subject (the worker's callback)."""
        self._dead.inc()

    def redelivered(self, count: int) -> None:
        """`count` messages handed back to NATS, their batch not committed (worker callback)."""
        self._redeliveries.inc(count)

    def watch_live(self, hub: _Live | None) -> None:
        """Report `hub`'s subscribers at each scrape (None: report none)."""
        self._live.hub = hub

    def watch_store(self, store: _Memory | None) -> None:
        """Report `store`'s in-process memory at each scrape (None, or a store that
        keeps none in this process: no sample)."""
        self._store.store = store

    def serve(
        self, host: str, port: int, authenticator: _Authenticates | None = None
    ) -> MetricsEndpoint:
        """Expose the registry at http://host:port/metrics (port 0: a free one);
        with `authenticator`, only to scrapes it accepts (others get 401)."""
        app = make_wsgi_app(self.registry)
        if authenticator is not None:
            app = _guarded(app, authenticator)
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        server_class = type("_MetricsServer", (ThreadingWSGIServer,), {"address_family": family})
        server = make_server(address[0], port, app, server_class, handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
        thread.start()
        return MetricsEndpoint(server, thread, host)


class MetricsEndpoint:
    """The running HTTP exposition server; `close()` stops it."""

    def __init__(self, server, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    def __enter__(self) -> MetricsEndpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_App = Callable[[dict, Callable], Iterable[bytes]]


def _guarded(app: _App, authenticator: _Authenticates) -> _App:
    """`app`, answering 401 (503 while auth is unavailable) to a scrape without a valid token."""

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        authorization = environ.get("HTTP_AUTHORIZATION") or ""
        try:
            # Bearer only: a scrape should not cost a scrypt (basic auth) each time.
            if authorization.split(" ")[0].lower() != "bearer":
                raise flight.FlightUnauthenticatedError(
                    "metrics need `authorization: Bearer <token>` (any role)"
                )
            authenticator.authenticate(authorization)
        except flight.FlightError as refused:
            unavailable = isinstance(refused, flight.FlightUnavailableError)
            status = "503 Service Unavailable" if unavailable else "401 Unauthorized"
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            if not unavailable:
                headers.append(("WWW-Authenticate", 'Bearer realm="flightdeck metrics"'))
            start_response(status, headers)
            return [f"{refused}\n".encode()]
        return app(environ, start_response)

    return guarded


class _QuietHandler(WSGIRequestHandler):
    """No access log line on stderr per scrape."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class _LiveCollector:
    """Gauges read from the live hub when scraped, so subscribing costs nothing extra."""

    def __init__(self) -> None:
        self.hub: _Live | None = None

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        backlog = hub.pending_rows() if hub is not None else []
        subscribers = hub.subscribers if hub is not None else 0
        rejected = hub.rejected if hub is not None else 0
        yield from self._families(subscribers, sum(backlog), max(backlog, default=0), rejected)

    @staticmethod
    def _families(
        subscribers: int = 0, pending: int = 0, worst: int = 0, rejected: int = 0
    ) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "flightdeck_live_subscribers", "Live subscriptions (DoExchange) open", subscribers
        )
        yield GaugeMetricFamily(
            "flightdeck_live_pending_rows",
            "Update rows queued but not yet sent, summed over live subscribers",
            pending,
        )
        yield GaugeMetricFamily(
            "flightdeck_live_pending_rows_max",
            "Update rows queued but not yet sent to the most lagging live subscriber",
            worst,
        )
        yield CounterMetricFamily(
            "flightdeck_live_updates_rejected",
            "Updates on the live subject dropped because they lacked flightdeck's signature",
            rejected,
        )


class _StoreCollector:
    """The store's own account of its memory in this process, asked at each scrape."""

    def __init__(self) -> None:
        self.store: _Memory | None = None

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        try:
            used = self.store.memory_bytes() if self.store is not None else None
        except BackendError:  # a store going away must not fail the whole scrape
            used = None
        family = self._family()
        if used is not None:
            family.add_metric([], used)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "flightdeck_store_memory_bytes",
            "Memory the embedded store's buffer manager holds in this process "
            "(DuckDB's duckdb_memory(); no sample on PostgreSQL)",
        )


# The gRPC status a completed call ended with, from the exception the handler
# raised (pyarrow passes it to call_completed as raised): the same mapping
# pyarrow applies to it. Anything else (FlightServerError, RuntimeError) is UNKNOWN.
_STATUSES: tuple[tuple[type[BaseException], str], ...] = (
    (flight.FlightUnauthenticatedError, "unauthenticated"),
    (flight.FlightUnauthorizedError, "permission_denied"),
    (flight.FlightUnavailableError, "unavailable"),
    (flight.FlightTimedOutError, "deadline_exceeded"),
    (flight.FlightCancelledError, "cancelled"),
    (flight.FlightInternalError, "internal"),
    (ValueError, "invalid_argument"),  # pa.ArrowInvalid among them
    (KeyError, "not_found"),
    (NotImplementedError, "unimplemented"),
)

# A client that cancels a stream (leaving a live subscription, say) makes the
# handler's next write fail with this, in pyarrow's words, as INTERNAL. It is
# the client's choice, not the server's fault: counted as cancelled, no alert.
_CLIENT_GONE = "to stream (client disconnect?)"


def _status(exception: BaseException | None) -> str:
    if exception is None:
        return "ok"
    if isinstance(exception, flight.FlightInternalError) and _CLIENT_GONE in str(exception):
        return "cancelled"
    for kind, status in _STATUSES:
        if isinstance(exception, kind):
            return status
    return "unknown"


def _method_name(method: flight.FlightMethod) -> str:
    """FlightMethod.DO_GET -> "DoGet", the RPC's name in the Flight protocol."""
    return "".join(part.title() for part in method.name.split("_"))


class _RpcMetricsFactory(flight.ServerMiddlewareFactory):
    def __init__(self, requests: Counter, duration: Histogram) -> None:
        super().__init__()
        self._requests = requests
        self._duration = duration
        self._names = {m: _method_name(m) for m in flight.FlightMethod}

    def start_call(self, info: flight.CallInfo, headers: dict) -> flight.ServerMiddleware:
        return _RpcMetrics(self, self.name(info.method))

    def name(self, method: flight.FlightMethod) -> str:
        return self._names.get(method, "Invalid")

    def completed(self, method: str, exception: BaseException | None, seconds: float) -> None:
        self._requests.labels(method, _status(exception)).inc()
        self._duration.labels(method).observe(seconds)


class _RpcMetrics(flight.ServerMiddleware):
    def __init__(self, factory: _RpcMetricsFactory, method: str) -> None:
        super().__init__()
        self._factory = factory
        self._method = method
        self._started = time.perf_counter()

    def call_completed(self, exception: BaseException | None) -> None:
        self._factory.completed(self._method, exception, time.perf_counter() - self._started)


class _CountRefusals(flight.ServerMiddlewareFactory):
    """Another middleware, unchanged, except that a call it refuses is counted."""

    def __init__(self, inner: flight.ServerMiddlewareFactory, rpc: _RpcMetricsFactory) -> None:
        super().__init__()
        self._inner = inner
        self._rpc = rpc

    def start_call(self, info: flight.CallInfo, headers: dict) -> flight.ServerMiddleware | None:
        started = time.perf_counter()
        try:
            return self._inner.start_call(info, headers)
        except Exception as exc:
            self._rpc.completed(self._rpc.name(info.method), exc, time.perf_counter() - started)
            raise
