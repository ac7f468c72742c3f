"""The Flight RPC surface: one class, each method parses its request and delegates."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.ingest import ingest
from flightdeck.views import BackendError, Store, describe
from flightdeck.views import query as queries

from . import descriptors, streaming
from .errors import flight_errors
from .live.exchange import stream_subscription
from .live.hub import LiveHub
from .live.request import LIVE_KEYS, parse_subscription
from .settings import Settings

__all__ = ["FlightdeckServer"]

log = logging.getLogger("flightdeck.server")


class FlightdeckServer(flight.FlightServerBase):
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        committed: Callable[[], None] | None = None,
        hub: LiveHub | None = None,
        **kwargs,
    ) -> None:
        """`committed` is called after each ingest commit (it wakes the NATS publisher);
        `hub` serves live subscriptions (none: DoExchange answers UNAVAILABLE)."""
        super().__init__(settings.location, **kwargs)
        self.settings = settings
        self.store = store
        self._committed = committed
        self._hub = hub
        self._endpoint_locations = [settings.advertise] if settings.advertise else []

    def list_flights(
        self, context: flight.ServerCallContext, criteria: bytes
    ) -> Iterator[flight.FlightInfo]:
        with flight_errors("ListFlights"):
            views = describe(self.store)
        for view in views:
            descriptor = flight.FlightDescriptor.for_path(view.name)
            yield self._info(descriptor, queries.Query.whole(view.name), view.schema)

    def get_flight_info(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.FlightInfo:
        with flight_errors("GetFlightInfo"):
            query = descriptors.query_for(self.store, descriptor)
            return self._info(descriptor, query, queries.schema(self.store, query))

    def get_schema(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.SchemaResult:
        with flight_errors("GetSchema"):
            query = descriptors.query_for(self.store, descriptor)
            return flight.SchemaResult(queries.schema(self.store, query))

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.FlightDataStream:
        with flight_errors("DoGet"):
            query = descriptors.decode_ticket(ticket.ticket)
            opened = queries.run(self.store, query)
            return streaming.stream(
                context, opened, self.settings.batch_rows, self.settings.batch_bytes
            )

    def do_put(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        with flight_errors("DoPut"):
            descriptors.check_put_target(descriptor)
            result = ingest(self.store, (chunk.data for chunk in reader))
            if result.version is not None and self._committed is not None:
                self._committed()
            summary = {"accepted": result.accepted, "duplicates": result.duplicates}
            writer.write(pa.py_buffer(json.dumps(summary).encode()))

    def do_exchange(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.MetadataRecordBatchWriter,
    ) -> None:
        with flight_errors("DoExchange"):
            if self._hub is None:
                raise BackendError(
                    "nats", "live updates need NATS; none is connected", "unavailable"
                )
            schemas = {v.name: v.schema for v in describe(self.store) if v.name in LIVE_KEYS}
            subscription = parse_subscription(descriptor.command or b"", schemas)
            stream_subscription(
                context,
                self.store,
                self._hub,
                subscription,
                schemas[subscription.view],
                writer,
                self.settings.heartbeat,
            )

    def shutdown(self) -> None:
        """End live subscriptions first: gRPC waits for every call to finish."""
        if self._hub is not None:
            self._hub.close()
        super().shutdown()

    def _info(
        self, descriptor: flight.FlightDescriptor, query: queries.Query, schema: pa.Schema
    ) -> flight.FlightInfo:
        endpoint = flight.FlightEndpoint(descriptors.encode_ticket(query), self._endpoint_locations)
        return flight.FlightInfo(schema, descriptor, [endpoint], -1, -1)
