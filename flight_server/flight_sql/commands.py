"""Flight SQL commands on the wire: `google.protobuf.Any` in, typed messages out.

A command descriptor, an action body and a PutResult carry Flight SQL messages
packed in an Any whose type URL names the message. Bytes that are not such an
Any (plain UTF-8 SQL, a live subscription's JSON) are not Flight SQL, and the
caller serves them the plain way.
"""

from __future__ import annotations

from flightdeck.views import Unsupported
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from . import messages as pb

__all__ = ["pack", "unpack"]

_TYPE_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."
_KNOWN = {
    name: getattr(pb, name)
    for name in (
        "CommandGetSqlInfo",
        "CommandGetXdbcTypeInfo",
        "CommandGetCatalogs",
        "CommandGetDbSchemas",
        "CommandGetTables",
        "CommandGetTableTypes",
        "CommandGetPrimaryKeys",
        "CommandGetExportedKeys",
        "CommandGetImportedKeys",
        "CommandGetCrossReference",
        "CommandStatementQuery",
        "CommandPreparedStatementQuery",
        "CommandStatementUpdate",
        "CommandStatementIngest",
        "ActionCreatePreparedStatementRequest",
        "ActionClosePreparedStatementRequest",
        "ActionCancelQueryRequest",
    )
}


def unpack(raw: bytes) -> Message | None:
    """The Flight SQL message in `raw`, or None when `raw` is not a Flight SQL Any.

    A Flight SQL message we do not serve raises Unsupported naming it, so the
    client gets UNIMPLEMENTED rather than a confusing SQL error.
    """
    wrapped = any_pb2.Any()
    try:
        wrapped.ParseFromString(raw)
    except DecodeError:
        return None
    if not wrapped.type_url.startswith(_TYPE_PREFIX):
        return None
    name = wrapped.type_url.removeprefix(_TYPE_PREFIX)
    message_class = _KNOWN.get(name)
    if message_class is None:
        raise Unsupported(f"Flight SQL command {name}")
    message = message_class()
    try:
        message.ParseFromString(wrapped.value)
    except DecodeError:
        raise Unsupported(f"Flight SQL command {name} (could not decode its body)") from None
    return message


def pack(message: Message) -> bytes:
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return wrapped.SerializeToString()
