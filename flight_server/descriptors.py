"""Flight descriptors and tickets: what a client names, and what it hands back.

A path descriptor `["va_…"]` names a whole view; a command descriptor holds
UTF-8 SQL text. A ticket is self-contained JSON (the view or the SQL), so any
server sharing the store can serve it; it is checked again when redeemed.
"""

from __future__ import annotations

import json

import pyarrow.flight as flight
from flightdeck.ingest import InvalidBatch
from flightdeck.views import InvalidQuery, NotFound, Store, view_names
from flightdeck.views import query as queries
from flightdeck.views.query import Query

__all__ = ["check_put_target", "decode_ticket", "encode_ticket", "query_for"]

PUT_TARGETS = (("events", "pageview"),)


def query_for(store: Store, descriptor: flight.FlightDescriptor) -> Query:
    """The checked query a descriptor asks for."""
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        path = [part.decode("utf-8", "replace") for part in descriptor.path]
        if len(path) != 1:
            raise NotFound("flight path", "/".join(path), view_names(store))
        return queries.for_view(store, path[0])
    return queries.for_sql(store, _sql_text(descriptor.command))


def _sql_text(command: bytes) -> str:
    try:
        return command.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidQuery("encoding", f"command is not UTF-8 SQL text ({exc.reason})") from None


def encode_ticket(query: Query) -> flight.Ticket:
    body = {"view": query.view} if query.view else {"sql": query.sql}
    return flight.Ticket(json.dumps({"v": 1, **body}).encode())


def decode_ticket(raw: bytes) -> Query:
    """Our JSON tickets, and for convenience a bare view name (`Ticket(b"va_x")`)."""
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("va_"):
        return Query.whole(text)
    try:
        body = json.loads(text)
        if "view" in body:
            return Query.whole(str(body["view"]))
        return Query(str(body["sql"]))
    except (ValueError, KeyError, TypeError):
        raise InvalidQuery(
            "ticket",
            "not a flightdeck ticket: pass a ticket from GetFlightInfo, "
            "or a view name such as b'va_pageview_aggregate'",
        ) from None


def check_put_target(descriptor: flight.FlightDescriptor) -> None:
    """DoPut accepts event batches on `["events", "pageview"]` only."""
    path = tuple(p.decode("utf-8", "replace") for p in (descriptor.path or []))
    if descriptor.descriptor_type != flight.DescriptorType.PATH or path not in PUT_TARGETS:
        shown = list(path) if path else descriptor.command
        raise InvalidBatch(
            None,
            None,
            "put-path",
            f"cannot put to {shown!r}; send events to ['events', 'pageview']",
        )
