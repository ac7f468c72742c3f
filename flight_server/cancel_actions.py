"""The two cancel actions: Flight's CancelFlightInfo and Flight SQL's older CancelQuery.

Both carry the FlightInfo that GetFlightInfo answered and ask to stop the query
behind it: every query ticket among its endpoints is cancelled in
`RunningQueries` for the caller. The answer is CANCELLED once that is done (the
caller's running DoGets were interrupted, later ones will be refused);
NOT_CANCELLABLE when the FlightInfo holds no query (metadata answers are
computed whole on DoGet and are not worth stopping).

Wire formats: CancelFlightInfoRequest {FlightInfo info = 1} is the plain message;
CancelQuery's body is an Any holding ActionCancelQueryRequest {bytes info = 1}.
The two are the same bytes on the wire (an embedded message is length-delimited
like bytes), as are their results {enum status = 1} with the same values, so
one pair of message classes reads and writes both.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf.message import DecodeError

from . import descriptors
from .auth import Identity
from .flight_sql import messages as pb
from .flight_sql.commands import pack, unpack
from .refusals import InvalidAction
from .running_queries import RunningQueries

__all__ = ["CANCEL_ACTIONS", "answer_cancel"]

CANCEL_FLIGHT_INFO = "CancelFlightInfo"
CANCEL_QUERY = "CancelQuery"
CANCEL_ACTIONS = {
    CANCEL_FLIGHT_INFO: "Stop the query of a FlightInfo: its running DoGets and later ones",
    CANCEL_QUERY: "Flight SQL's older CancelQuery: the same as CancelFlightInfo",
}

# CancelStatus (Flight) and CancelResult (Flight SQL) share these numbers.
_CANCELLED = 1
_NOT_CANCELLABLE = 3


def answer_cancel(
    kind: str, body: bytes, caller: Identity, running: RunningQueries, max_parameter_bytes: int
) -> bytes:
    """The one Result body of a cancel action of `kind`, after cancelling."""
    info = _flight_info(kind, body)
    tickets = _query_tickets(info, max_parameter_bytes)
    for ticket in tickets:
        running.cancel(ticket, caller)
    status = _CANCELLED if tickets else _NOT_CANCELLABLE
    result = pb.ActionCancelQueryResult(result=status)
    return pack(result) if kind == CANCEL_QUERY else result.SerializeToString()


def _flight_info(kind: str, body: bytes) -> flight.FlightInfo:
    request = _request(kind, body)
    try:
        return flight.FlightInfo.deserialize(request.info)
    except (pa.ArrowException, ValueError, TypeError):
        raise InvalidAction(
            rule="action-body", detail=f"{kind}'s info is not a serialized FlightInfo"
        ) from None


def _request(kind: str, body: bytes):
    if kind == CANCEL_QUERY:
        request = unpack(body)
        if not isinstance(request, pb.ActionCancelQueryRequest):
            raise InvalidAction(
                rule="action-body", detail=f"{kind} expects ActionCancelQueryRequest"
            )
        return request
    try:
        return pb.ActionCancelQueryRequest.FromString(body)
    except DecodeError:
        raise InvalidAction(
            rule="action-body", detail=f"{kind} expects a CancelFlightInfoRequest"
        ) from None


def _query_tickets(info: flight.FlightInfo, max_parameter_bytes: int) -> list[bytes]:
    """The endpoints' tickets that run a query (each is decoded: a ticket that is
    not flightdeck's is refused rather than silently not cancelled)."""
    tickets = []
    for endpoint in info.endpoints:
        raw = endpoint.ticket.ticket
        if not isinstance(
            descriptors.decode_ticket(raw, max_parameter_bytes), descriptors.MetadataTicket
        ):
            tickets.append(raw)
    return tickets
