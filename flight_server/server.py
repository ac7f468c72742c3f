"""The Flight RPC surface: one class, each method parses its request and delegates."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from importlib.metadata import version

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.ingest import IngestResult, ingest, loads
from flightdeck.ingest.event_types import PAGEVIEW
from flightdeck.views import BackendError, Interrupt, Store, describe
from flightdeck.views import query as queries

from . import descriptors, parallel_reads, streaming
from .actions import Action, ActionTable
from .admin import ADMIN_ACTIONS, run_admin_action
from .auth import (
    AUTH_MIDDLEWARE,
    Authenticator,
    AuthMiddlewareFactory,
    HandshakeAuthHandler,
    Identity,
    require,
)
from .cancel_actions import CANCEL_ACTIONS, answer_cancel
from .errors import flight_errors
from .flight_sql import FlightSqlService
from .flight_sql import unpack as flight_sql_command
from .health import HEALTH_ACTION, Health
from .limits import Slots
from .live.exchange import stream_subscription
from .live.hub import LiveHub
from .live.multiplex import serve_multiplex
from .live.schemas import LiveSchemas
from .live.session import LiveSession
from .live.snapshots import SnapshotReads
from .load_status import LOAD_STATUS_ACTION
from .metrics import Metrics
from .row_counts import total_records
from .running_queries import RunningQueries
from .session import (
    SESSION_ACTIONS,
    SESSION_MIDDLEWARE,
    SessionActions,
    SessionCookieFactory,
    SessionStore,
    session_id_of,
)
from .settings import Settings

__all__ = ["FlightdeckServer"]

log = logging.getLogger("flightdeck.server")

# How long a stop (SIGTERM, Ctrl-C) waits for running calls before it interrupts the
# queries among them: a dashboard's query finishes, while the stop stays well inside
# the 30 s a supervisor such as Kubernetes gives before SIGKILL. A fixed constant until
# the settings table can carry it (--query-timeout alone could hold a stop for minutes).
SHUTDOWN_GRACE_S = 20.0


class FlightdeckServer(flight.FlightServerBase):
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        committed: Callable[[], None] | None = None,
        hub: LiveHub | None = None,
        metrics: Metrics | None = None,
        nats_status: Callable[[], str] | None = None,
        ingest_status: Callable[[], str] | None = None,
        **kwargs,
    ) -> None:
        """`committed` is called after each ingest commit (it wakes the NATS publisher);
        `hub` serves live subscriptions (none: DoExchange answers UNAVAILABLE);
        `metrics` counts RPCs and ingested rows; `nats_status` and
        `ingest_status` (the NATS worker's batches) feed the health action."""
        authenticator = authenticator_for(settings)
        self.authenticator = authenticator  # the HTTP face checks callers with the same one
        middleware = {
            AUTH_MIDDLEWARE: AuthMiddlewareFactory(authenticator),
            SESSION_MIDDLEWARE: SessionCookieFactory(),
        }
        if metrics is not None:  # adds "metrics"; counts the calls auth refuses too
            middleware = metrics.instrument(middleware)
        super().__init__(
            settings.location,
            auth_handler=HandshakeAuthHandler() if authenticator else None,
            middleware=middleware,
            **settings.tls_options(),
            **kwargs,
        )
        self.settings = settings
        self.store = store
        self._committed = committed
        self._hub = hub
        self._endpoint_locations = [settings.advertise] if settings.advertise else []
        self._max_batch_bytes = int(settings.max_put_batch_mb * 1024 * 1024)
        self._max_parameter_bytes = int(settings.max_parameter_mb * 1024 * 1024)
        self._query_slots = Slots(settings.max_queries, "queries", "--max-queries")
        self._live_slots = Slots(
            settings.max_subscribers, "live subscriptions", "--max-subscribers"
        )
        self._live_schemas = LiveSchemas(store)
        self._snapshots = SnapshotReads(store, hub.held_limit if hub else 0)
        self._sql = FlightSqlService(
            store,
            version=version("flightdeck"),
            put_events=lambda batches, event_type: self._ingest(
                batches, "flight_sql", event_type=event_type
            ),
            locations=self._endpoint_locations,
            max_batch_bytes=self._max_batch_bytes,
            query_slots=self._query_slots,
            max_query_bytes=settings.max_query_bytes,
            max_parameter_bytes=self._max_parameter_bytes,
            statement_timeout_s=settings.query_timeout,
        )
        self._event_types = settings.event_type_rules()
        self._metrics = metrics
        self._health = Health(
            store,
            version("flightdeck"),
            nats_status,
            query_slots=self._query_slots,
            ingest_status=ingest_status,
        )
        self._sessions = SessionActions(
            SessionStore(settings.max_sessions, settings.session_timeout),
            self._sql.session_option_values,
        )
        self._actions = self._action_table()
        # Every running query's interrupt; each leaves as its stream lets it go.
        self._interrupts: weakref.WeakSet[Interrupt] = weakref.WeakSet()
        self._running = RunningQueries()  # by ticket, for the cancel actions

    def list_flights(
        self, context: flight.ServerCallContext, criteria: bytes
    ) -> Iterator[flight.FlightInfo]:
        require(context, "reader", "ListFlights")
        with flight_errors("ListFlights", context):
            views = describe(self.store)
        for view in views:
            descriptor = flight.FlightDescriptor.for_path(view.name)
            yield self._info(descriptor, queries.Query.whole(view.name), view.schema)

    def get_flight_info(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.FlightInfo:
        require(context, "reader", "GetFlightInfo")
        with flight_errors("GetFlightInfo", context):
            command = _flight_sql(descriptor)
            if command is not None:
                return self._sql.flight_info(descriptor, command)
            query = descriptors.query_for(self.store, descriptor, self.settings.max_query_bytes)
            return self._info(descriptor, query, self._schema(query))

    def get_schema(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.SchemaResult:
        require(context, "reader", "GetSchema")
        with flight_errors("GetSchema", context):
            command = _flight_sql(descriptor)
            if command is not None:
                return flight.SchemaResult(self._sql.schema(command))
            query = descriptors.query_for(self.store, descriptor, self.settings.max_query_bytes)
            return flight.SchemaResult(self._schema(query))

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.FlightDataStream:
        identity = require(context, "reader", "DoGet")
        with flight_errors("DoGet", context):
            query = descriptors.decode_ticket(ticket.ticket, self._max_parameter_bytes)
            if isinstance(query, descriptors.MetadataTicket):
                return flight.RecordBatchStream(self._sql.metadata(query))
            return flight.GeneratorStream(*self._cancellable(context, ticket, query, identity))

    def _cancellable(
        self,
        context: flight.ServerCallContext,
        ticket: flight.Ticket,
        query: queries.Query,
        identity: Identity,
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """open_query, registered under its ticket for the cancel actions."""
        interrupt = Interrupt()
        finish = self._running.start(ticket.ticket, identity, interrupt)
        if finish is None:
            raise _cancelled()
        try:
            schema, batches = self.open_query(context, query, interrupt)
        except BaseException:
            finish()
            raise
        cancelled = functools.partial(self._running.cancelled, ticket.ticket, identity)
        return schema, _until_cancelled(batches, finish, cancelled)

    def open_query(
        self, call: streaming.Call, query: queries.Query, interrupt: Interrupt | None = None
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """Run a checked query for one call (DoGet, or the HTTP face's POST /api/query):
        its schema and bounded batches, holding a query slot until the stream ends and
        interrupted in the store when the call is cancelled or the server stops."""
        interrupt = interrupt or Interrupt()
        self._interrupts.add(interrupt)  # a stop past its grace fires it
        run = queries.run(
            self.store, query, max_bytes=self.settings.max_query_bytes, interrupt=interrupt
        )
        return streaming.watched_batches(
            call,
            _limited(self._query_slots, run),
            self.settings.batch_rows,
            self.settings.batch_bytes,
            self.settings.stream_idle_timeout,
            interrupt,
        )

    # What the HTTP face (flight_server/http/) shares with Flight.
    @property
    def health(self) -> Health:
        return self._health

    @property
    def live_schemas(self) -> LiveSchemas:
        return self._live_schemas

    @property
    def hub(self) -> LiveHub | None:
        return self._hub

    @property
    def live_slots(self) -> Slots:
        return self._live_slots

    def do_put(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        with flight_errors("DoPut", context):
            command = _flight_sql(descriptor)
            if command is not None:
                require(context, self._sql.put_role(command), f"DoPut {type(command).__name__}")
                self._sql.put(command, reader, writer)
                return
            require(context, "writer", "DoPut (loading events)")
            writer.write(self._load(context, descriptor, reader))

    def list_actions(self, context: flight.ServerCallContext) -> list[tuple[str, str]]:
        require(context, "reader", "ListActions")
        return self._actions.listing()

    def do_action(
        self, context: flight.ServerCallContext, action: flight.Action
    ) -> Iterator[bytes]:
        body = action.body.to_pybytes() if action.body is not None else b""
        identity = require(context, "reader", f"action {action.type!r}")
        with flight_errors("DoAction", context):
            served = self._actions.get(action.type)
        identity = require(context, served.role, f"action {action.type!r}")
        with flight_errors("DoAction", context):
            if action.type in CANCEL_ACTIONS:  # they act for the caller: see running_queries
                limit = self._max_parameter_bytes
                return iter([answer_cancel(action.type, body, identity, self._running, limit)])
            if action.type in SESSION_ACTIONS:  # they need the call's session cookie
                key = (identity.name, session_id_of(context) or "")
                return iter(self._sessions.run(action.type, key, body))
            return iter(list(served.run(body)))

    def _action_table(self) -> ActionTable:
        sql = [
            Action(name, text, "reader", functools.partial(self._sql.action, name))
            for name, text in self._sql.actions()
        ]
        admin = [
            Action(name, text, "admin", functools.partial(self._admin_action, name))
            for name, text in ADMIN_ACTIONS.items()
        ]
        # health never raises: a failing store reports "degraded".
        health = Action(*HEALTH_ACTION, "reader", lambda _body: [self._health.body()])
        load_status = Action(*LOAD_STATUS_ACTION, "writer", self._load_status)
        # Listed here; do_action serves them, as they need the caller (and its session).
        cancels = [
            Action(name, text, "reader", _served_by_do_action)
            for name, text in CANCEL_ACTIONS.items()
        ]
        sessions = [
            Action(name, text, "reader", _with_session) for name, text in SESSION_ACTIONS.items()
        ]
        return ActionTable([*sql, *admin, health, load_status, *cancels, *sessions])

    def _admin_action(self, kind: str, body: bytes) -> list[bytes]:
        result = run_admin_action(self.store, self.settings, kind, body)
        if result.wrote and self._committed is not None:
            self._committed()
        return [result.body]

    def _load_status(self, body: bytes) -> list[bytes]:
        status = loads.load_status(self.store, body.decode("utf-8", "replace"))
        return [json.dumps(status.as_dict()).encode()]

    def do_exchange(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.MetadataRecordBatchWriter,
    ) -> None:
        if descriptor.descriptor_type == flight.DescriptorType.PATH:
            # A load a client can cancel: pyarrow offers no cancel for DoPut.
            require(context, "writer", "DoExchange (loading events)")
            with flight_errors("DoExchange", context):
                writer.write_metadata(self._load(context, descriptor, reader))
            return
        require(context, "reader", "DoExchange (live updates)")
        with flight_errors("DoExchange", context):
            if self._hub is None:
                raise BackendError(
                    "nats", "live updates need NATS; none is connected", "unavailable"
                )
            if _multiplexed(descriptor.command or b""):
                with _left_as_cancelled(context):
                    serve_multiplex(
                        context,
                        reader,
                        writer,
                        self.live_session,
                        self._live_slots,
                        lambda: self._hub.position,
                    )
                return
            subscription, schema = self._live_schemas.parse(descriptor.command or b"")
            with self._live_slots.take(), _left_as_cancelled(context):
                stream_subscription(
                    context,
                    self.store,
                    self._hub,
                    subscription,
                    schema,
                    writer,
                    self.settings.heartbeat,
                    self.settings.batch_rows,
                )

    def live_session(
        self, command: bytes, writer: object, on_ready: Callable[[], None]
    ) -> LiveSession:
        """A live subscription served step by step (live/session.py) for whoever drives
        many at once: a multiplexed DoExchange, the HTTP face's event loop."""
        assert self._hub is not None
        subscription, _ = self._live_schemas.parse(command)
        return LiveSession(
            self.store,
            self._hub,
            self._snapshots,
            subscription,
            writer,
            heartbeat_s=self.settings.heartbeat,
            batch_rows=self.settings.batch_rows,
            on_ready=on_ready,
        )

    def _schema(self, query: queries.Query) -> pa.Schema:
        # DuckDB runs some queries to learn their schema: that takes a slot too.
        with self._query_slots.take():
            return queries.schema(self.store, query)

    def _load(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
    ) -> pa.Buffer:
        """One load of events (DoPut or DoExchange); its summary as JSON."""
        event_type = descriptors.check_put_target(descriptor)
        put = descriptors.PutStream(reader, context, self._max_batch_bytes)
        result = self._ingest(put.batches(), control=put, event_type=event_type)
        summary = {"accepted": result.accepted, "duplicates": result.duplicates}
        return pa.py_buffer(json.dumps(summary).encode())

    def _ingest(
        self,
        batches: Iterator[pa.RecordBatch],
        source: str = "doput",
        control: loads.PutControl | None = None,
        event_type: str = PAGEVIEW,
    ) -> IngestResult:
        """One atomic ingest; a commit wakes the publisher of live updates."""
        result = ingest(
            self.store, batches, control, event_type=event_type, event_types=self._event_types
        )
        if self._metrics is not None:
            self._metrics.ingested(source, result)
        if result.version is not None and self._committed is not None:
            self._committed()
        return result

    def running_queries(self) -> int:
        return self._query_slots.in_use()

    def shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """End live subscriptions first: gRPC waits for every call to finish. Running
        queries and loads get `grace_s` seconds; then the queries are interrupted."""
        if self._hub is not None:
            self._hub.close()
        self._snapshots.close()
        busy = self.running_queries()
        if busy:
            log.info(
                "waiting up to %.0f s for %d running %s to finish; new calls are refused",
                grace_s,
                busy,
                "query" if busy == 1 else "queries",
            )
        stopping = threading.Thread(target=super().shutdown, name="flight-shutdown", daemon=True)
        stopping.start()
        stopping.join(grace_s)
        if stopping.is_alive():
            log.warning(
                "calls still running after %.0f s: interrupting %d queries",
                grace_s,
                self.running_queries(),
            )
            for interrupt in list(self._interrupts):
                interrupt.fire()
            stopping.join(grace_s)
        if stopping.is_alive():  # a load whose client neither sends nor leaves
            log.warning("calls still running after the grace period; stopping without them")

    def _info(
        self, descriptor: flight.FlightDescriptor, query: queries.Query, schema: pa.Schema
    ) -> flight.FlightInfo:
        endpoints = [
            flight.FlightEndpoint(descriptors.encode_ticket(part), self._endpoint_locations)
            for part in parallel_reads.split(self.store, query)
        ]
        records = total_records(self.store, query)
        return flight.FlightInfo(schema, descriptor, endpoints, records, -1)


def _with_session(_body: bytes) -> list[bytes]:
    raise AssertionError("session actions run in do_action, with the call's session")


def _served_by_do_action(_body: bytes) -> list[bytes]:
    raise AssertionError("do_action answers the cancel actions itself")


_CANCELLED_TEXT = (
    "the query was cancelled (CancelFlightInfo or CancelQuery); ask GetFlightInfo "
    "for a new ticket to run it again"
)


def _cancelled() -> flight.FlightCancelledError:
    return flight.FlightCancelledError(_CANCELLED_TEXT)


def _until_cancelled(
    batches: Iterator[pa.RecordBatch], finish: Callable[[], None], cancelled: Callable[[], bool]
) -> Iterator[pa.RecordBatch]:
    """`batches`, forgotten by the running-queries table as the stream ends; a query
    stopped by a cancel action ends saying so, not with the store's interrupt error.

    Its status is DEADLINE_EXCEEDED, not CANCELLED: pyarrow (26) turns a CANCELLED
    raised from a GeneratorStream into a SIGINT of the server's own process."""
    # A stream abandoned before its first batch never runs the body below.
    weakref.finalize(batches, finish)
    try:
        yield from batches
    except flight.FlightError:
        if cancelled():
            raise flight.FlightTimedOutError(_CANCELLED_TEXT) from None
        raise
    finally:
        finish()


def _flight_sql(descriptor: flight.FlightDescriptor):
    """The Flight SQL command a command descriptor holds, if it holds one."""
    if descriptor.descriptor_type != flight.DescriptorType.CMD:
        return None
    return flight_sql_command(descriptor.command)


@contextlib.contextmanager
def _left_as_cancelled(context: flight.ServerCallContext) -> Iterator[None]:
    """A subscriber that leaves ends its call CANCELLED, however the handler noticed:
    a failed write (pyarrow's INTERNAL "client disconnect?") or a clean return."""
    try:
        yield
    except (flight.FlightError, pa.ArrowException, OSError):
        if not context.is_cancelled():
            raise
    if context.is_cancelled():
        raise flight.FlightCancelledError("the client left the subscription")


def _multiplexed(command: bytes) -> bool:
    """`{"multiplex": true}`: many subscriptions on this stream (live/multiplex.py)."""
    try:
        request = json.loads(command)
    except ValueError:
        return False  # the subscription parser says what is wrong with it
    return isinstance(request, dict) and request.get("multiplex") is True


@contextlib.contextmanager
def _limited(slots: Slots, opened: contextlib.AbstractContextManager) -> Iterator:
    """`opened`, holding one of `slots` until it is closed (when its stream ends)."""
    with slots.take(), opened as reader:
        yield reader


def authenticator_for(settings: Settings) -> Authenticator | None:
    """The auth file's and single sign-on's checks, or None when neither is set."""
    if not settings.authenticated:
        return None
    return Authenticator(settings.auth_file, oidc=settings.oidc_options())
