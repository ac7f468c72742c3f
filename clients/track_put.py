"""One tracked batch of one event type as one DoPut, and what to do when it fails."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.flight as flight

from .errors import DETAIL_TRAILERS, Error, ServerError, ServerUnavailable, TimedOut, from_arrow

__all__ = ["GIVE_UP", "RETRY", "RETRY_SOME", "put_events", "verdict"]

# Rows per record batch inside a put: the put stays one atomic call, while no
# single message nears the server's per-batch limit (properties may be 64 KB a row).
_CHUNK_ROWS = 256

RETRY = "retry"  # the server was not there or did not answer in time: not the batch's fault
RETRY_SOME = "retry-some"  # the server failed: retried a few times, a batch may cause it
GIVE_UP = "give-up"  # refused (invalid, unauthorised, unknown target): resending cannot help


def put_events(
    client: flight.FlightClient,
    event_type: str,
    table: pa.Table,
    options: flight.FlightCallOptions,
    location: str,
) -> dict:
    """Send `table` to `["events", event_type]` as one put; the server's summary
    (`accepted`, `duplicates`), or the client Error that says why not."""
    descriptor = flight.FlightDescriptor.for_path("events", event_type)
    try:
        writer, reader = client.do_put(descriptor, table.schema, options)
        try:
            writer.write_table(table, max_chunksize=_CHUNK_ROWS)
            writer.done_writing()
            answer = reader.read()
        finally:
            writer.close()
    except pa.ArrowException as exc:
        raise from_arrow(exc, "load", location, DETAIL_TRAILERS.last_detail()) from exc
    try:
        return json.loads(answer.to_pybytes()) if answer is not None else {}
    except ValueError:
        return {}


def verdict(error: Error) -> str:
    """Whether a failed put is worth sending again."""
    if isinstance(error, (ServerUnavailable, TimedOut)) or error.code == "CANCELLED":
        return RETRY
    if isinstance(error, ServerError) and error.code != "UNIMPLEMENTED":
        return RETRY_SOME
    return GIVE_UP
