"""Result formats by `Accept`: each turns record batches into bytes, one batch at a time.

Nothing here holds a whole result: every encoder writes a batch and hands back
the bytes it produced (Parquet a row group per batch, its footer at the end),
so the response streams as the store produces rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator

import orjson
import pyarrow as pa
import pyarrow.csv as csv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from .errors import HttpError

__all__ = ["FORMATS", "encode", "negotiate", "rows_json"]

JSON = "application/json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
FORMATS = (JSON, NDJSON, CSV, ARROW, PARQUET)


def negotiate(accept: str | None) -> str:
    """The first format of `Accept` we write (no header or */*: JSON); 406 otherwise."""
    if not accept:
        return JSON
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in FORMATS:
            return media
        if media in ("*/*", "application/*"):
            return JSON
        if media == "text/*":
            return CSV
    known = ", ".join(FORMATS)
    raise HttpError(406, f"cannot answer {accept!r}: accepted types are {known}", "accept")


def encode(media: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    """The response body in `media`, a piece per batch."""
    if media in (JSON, NDJSON):
        return _json(batches, array=media == JSON)
    return _written(_WRITERS[media], schema, batches)


def _json(batches: Iterator[pa.RecordBatch], *, array: bool) -> Iterator[bytes]:
    # orjson writes datetimes as ISO 8601 (with their UTC offset) and numbers as numbers.
    first = True
    if array:
        yield b"["
    for batch in batches:
        rows = rows_json(pa.Table.from_batches([batch]))
        if not rows:
            continue
        if array:
            yield (b"" if first else b",") + b",".join(rows)
        else:
            yield b"\n".join(rows) + b"\n"
        first = False
    if array:
        yield b"]"


def rows_json(table: pa.Table) -> list[bytes]:
    """Each row of `table` as a JSON object."""
    return [orjson.dumps(row, default=_json_value) for row in table.to_pylist()]


def _json_value(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return float(value)  # what JSON clients (Grafana, spreadsheets) expect of a number
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


class _Chunks:
    """A file Arrow writers write to; each read takes what was written since."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.closed = False

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


Writer = Callable[[pa.NativeFile, pa.Schema], object]

_WRITERS: dict[str, Writer] = {
    CSV: lambda sink, schema: csv.CSVWriter(sink, schema),
    ARROW: lambda sink, schema: ipc.new_stream(sink, schema),
    PARQUET: lambda sink, schema: pq.ParquetWriter(sink, schema),
}


def _written(make: Writer, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    chunks = _Chunks()
    writer = make(pa.PythonFile(chunks, mode="w"), schema)
    head = chunks.take()
    if head:
        yield head
    for batch in batches:
        writer.write_batch(batch)  # Parquet: one row group per batch
        yield chunks.take()
    writer.close()
    yield chunks.take()
