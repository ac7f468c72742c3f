"""Flight descriptors and tickets: what a client names, and what it hands back.

A path descriptor `["va_…"]` names a whole view; a command descriptor holds
UTF-8 SQL text (or a Flight SQL command, see flight_sql/). A ticket is
self-contained JSON (the view, or the SQL with its bound parameters, or a
metadata command), so any server sharing the store can serve it; it is checked
again when redeemed.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.ingest import InvalidBatch
from flightdeck.ingest.event_types import type_name_problem
from flightdeck.ingest.ipc_size import OverLimit, batch_size, read_bounded
from flightdeck.ingest.loads import check_load_id
from flightdeck.views import InvalidQuery, NotFound, Store, view_names
from flightdeck.views import query as queries
from flightdeck.views.query import Query

from .refusals import InvalidTarget

__all__ = [
    "MetadataTicket",
    "PutStream",
    "batch_from_text",
    "batch_to_text",
    "check_put_target",
    "decode_ticket",
    "encode_metadata_ticket",
    "encode_ticket",
    "parameters_too_large",
    "put_batches",
    "put_parameters",
    "query_for",
]


@dataclass(frozen=True)
class MetadataTicket:
    """A Flight SQL metadata command to answer on DoGet (its packed Any bytes)."""

    command: bytes


def query_for(store: Store, descriptor: flight.FlightDescriptor, max_query_bytes: int) -> Query:
    """The checked query a descriptor asks for; SQL over `max_query_bytes` is refused."""
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        path = [part.decode("utf-8", "replace") for part in descriptor.path]
        if len(path) != 1:
            raise NotFound("flight path", "/".join(path), view_names(store))
        return queries.for_view(store, path[0])
    return queries.for_sql(store, _sql_text(descriptor.command), max_bytes=max_query_bytes)


def _sql_text(command: bytes) -> str:
    try:
        return command.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidQuery("encoding", f"command is not UTF-8 SQL text ({exc.reason})") from None


def encode_ticket(query: Query) -> flight.Ticket:
    """A ticket of its own for each GetFlightInfo, even of the same query: a cancel
    names a ticket (CancelFlightInfo), and must not refuse the next run of its query."""
    body: dict = {"view": query.view} if query.view else {"sql": query.sql}
    body["run"] = secrets.token_hex(8)
    if query.parameters is not None:
        body["params"] = batch_to_text(query.parameters)
    return flight.Ticket(json.dumps({"v": 1, **body}).encode())


def encode_metadata_ticket(command: bytes) -> flight.Ticket:
    body = {"v": 1, "flight_sql": base64.b64encode(command).decode()}
    return flight.Ticket(json.dumps(body).encode())


def decode_ticket(raw: bytes, max_parameter_bytes: int) -> Query | MetadataTicket:
    """Our JSON tickets, and for convenience a bare view name (`Ticket(b"va_x")`).

    Bound parameters travel in the ticket, so the client can write any bytes
    there: they are decoded only within `max_parameter_bytes` (--max-parameter-mb).
    """
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("va_"):
        return Query.whole(text)
    try:
        body = json.loads(text)
        if "view" in body:
            return Query.whole(str(body["view"]))
        if "flight_sql" in body:
            return MetadataTicket(base64.b64decode(body["flight_sql"]))
        params = body.get("params")
        parameters = batch_from_text(params, max_parameter_bytes) if params else None
        return Query(str(body["sql"]), parameters=parameters)
    except (ValueError, KeyError, TypeError, pa.ArrowInvalid):
        raise InvalidQuery(
            "ticket",
            "not a flightdeck ticket: pass a ticket from GetFlightInfo, "
            "or a view name such as b'va_pageview_aggregate'",
        ) from None


def check_put_target(descriptor: flight.FlightDescriptor) -> str:
    """DoPut accepts event batches on `["events", TYPE]`: the type of every event."""
    path = tuple(p.decode("utf-8", "replace") for p in (descriptor.path or []))
    if (
        descriptor.descriptor_type != flight.DescriptorType.PATH
        or len(path) != 2
        or path[0] != "events"
    ):
        shown = list(path) if path else descriptor.command
        raise InvalidTarget(
            rule="put-path",
            detail=f"cannot put to {shown!r}; send events to ['events', TYPE], "
            "e.g. ['events', 'pageview'] or ['events', 'user.login']",
        )
    problem = type_name_problem(path[1])
    if problem is not None:
        raise InvalidTarget(rule="event-type", detail=f"cannot put to {list(path)!r}: {problem}")
    return path[1]


def put_batches(
    reader: flight.MetadataRecordBatchReader, max_bytes: int
) -> Iterator[pa.RecordBatch]:
    """The record batches of a DoPut, until the client ends it or aborts it (see PutStream)."""
    return PutStream(reader, None, max_bytes).batches()


class PutStream:
    """One load's stream (DoPut, or DoExchange for clients that may cancel): its record
    batches, its load id, and whether its client still wants it.

    A batch over `max_bytes` (--max-put-batch-mb) refuses the put: the server
    holds one batch at a time, so this bounds what a put costs in memory.

    app_metadata `{"load_id": "<id>"}` names the load: its commit records the id
    (action "load-status" answers for it). `{"abort": "<reason>"}` rolls the put
    back: a DoPut client cannot cancel its call from pyarrow. The server reads
    nothing from the client after its stream ends, and commits only if the call
    is not cancelled by then (`check_wanted`), so no client ever holds a commit up.
    """

    def __init__(
        self,
        reader: flight.MetadataRecordBatchReader,
        context: flight.ServerCallContext | None,
        max_bytes: int,
    ) -> None:
        self._reader = reader
        self._context = context
        self._max_bytes = max_bytes
        self.load_id: str | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        for chunk in self._reader:
            if chunk.app_metadata is not None:
                self._take(_control(chunk.app_metadata.to_pybytes()))
            if chunk.data is not None:
                _check_batch_size(chunk.data, self._max_bytes)
                yield chunk.data

    def check_wanted(self) -> None:
        """Called right before the commit: a client gone or cancelled rolls it back."""
        if self._context is not None and self._context.is_cancelled():
            raise _aborted("the client cancelled the put or went away before its commit")

    def _take(self, control: dict) -> None:
        _check_abort(control)
        if "load_id" in control:
            self.load_id = check_load_id(control["load_id"])


def _check_batch_size(batch: pa.RecordBatch, max_bytes: int) -> None:
    """Counted decoded (a compressed message was decompressed to give `batch`), and at
    least 8 bytes a row: a null-typed column claims rows it has no bytes for."""
    size = batch_size(batch)
    if size > max_bytes:
        raise InvalidBatch(
            None,
            None,
            "batch-size",
            f"a record batch of {batch.num_rows} rows decodes to {size / 2**20:.1f} MB, over "
            f"the limit of {max_bytes / 2**20:g} MB (--max-put-batch-mb); send smaller batches",
        )


def _control(metadata: bytes) -> dict:
    """A put's app_metadata as a control message; anything else is ignored."""
    try:
        control = json.loads(metadata)
    except ValueError:
        return {}
    return control if isinstance(control, dict) else {}


def _check_abort(control: dict) -> None:
    reason = control.get("abort")
    if reason is not None:
        raise _aborted(f"the client aborted the put ({reason})")


def _aborted(why: str) -> InvalidBatch:
    return InvalidBatch(None, None, "aborted", f"{why}; nothing was committed")


def batch_to_text(batch: pa.RecordBatch) -> str:
    """A record batch (bound parameters) as base64 Arrow IPC, to travel inside JSON."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode()


def batch_from_text(text: str, max_bytes: int) -> pa.RecordBatch:
    """Bound parameters from base64 Arrow IPC, refused unread if they decode to more than
    `max_bytes`: a compressed stream of a few KB can hold gigabytes."""
    try:
        return _one_batch(read_bounded(base64.b64decode(text), max_bytes))
    except OverLimit as exc:
        raise parameters_too_large(exc.found, max_bytes) from None


def put_parameters(
    reader: flight.MetadataRecordBatchReader, max_bytes: int, max_batch_bytes: int
) -> pa.RecordBatch:
    """Parameters bound by DoPut, as one batch, within `max_bytes` decoded in all and
    `max_batch_bytes` (--max-put-batch-mb) per message.

    pyarrow decodes each message in C++ before we see it: checked message by
    message, the server holds at most one message over the limit, then refuses.
    """
    batches, total = [], 0
    for chunk in reader:
        if chunk.data is None:
            continue
        total += batch_size(chunk.data)
        if total > max_bytes:
            raise parameters_too_large(total, max_bytes)
        _check_batch_size(chunk.data, max_batch_bytes)
        batches.append(chunk.data)
    return _one_batch(pa.Table.from_batches(batches, schema=reader.schema))


def parameters_too_large(found: int, max_bytes: int) -> InvalidQuery:
    return InvalidQuery(
        "parameter-size",
        f"the bound parameters decode to at least {found / 2**20:.1f} MB, over the limit of "
        f"{max_bytes / 2**20:g} MB (--max-parameter-mb); parameters are a row of values",
    )


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    """Everything `table` holds as one record batch (parameters are a few rows)."""
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
