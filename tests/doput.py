"""A DoPut of page-view events as a loader sends it, and the summary the server answers."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.flight as flight

EVENTS = flight.FlightDescriptor.for_path("events", "pageview")


def put_events(
    client: flight.FlightClient, table: pa.Table, max_chunksize: int | None = None
) -> dict:
    """Put `table` in batches of at most `max_chunksize` rows (one batch per chunk of the
    table when None); the server's summary, e.g. {"accepted": 10, "duplicates": 0}."""
    writer, meta = client.do_put(EVENTS, table.schema)
    for batch in table.to_batches(max_chunksize=max_chunksize):
        writer.write_batch(batch)
    writer.done_writing()
    buf = meta.read()
    writer.close()
    return json.loads(buf.to_pybytes())
