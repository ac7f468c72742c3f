"""Writing a query's record batches out as a text table, CSV, JSON lines or Parquet.

Every format but the text table streams batch by batch: a result larger than
memory can go to a file.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from typing import IO, Any

import pyarrow as pa

from .far_dates import readable

__all__ = ["FORMATS", "write_csv", "write_json_lines", "write_parquet", "write_table_text"]

FORMATS = ("table", "csv", "json", "parquet")
MAX_CELL = 40  # characters of one text-table cell; longer values end in "…"


def write_table_text(reader: pa.RecordBatchReader, out: IO[str]) -> int:
    """An aligned text table with a header; numbers right-aligned. Returns the row count."""
    table = readable(reader.read_all())  # column widths need every row
    names = table.column_names
    rows = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
    numeric = [
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        for t in table.schema.types
    ]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]

    def line(cells: list[str]) -> str:
        padded = (
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    out.write(line(names) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in rows:
        out.write(line(row) + "\n")
    out.write(f"({len(rows)} row{'' if len(rows) == 1 else 's'})\n")
    return len(rows)


def _cell(value: Any) -> str:
    if value is None:
        text = "null"
    elif isinstance(value, dt.datetime | dt.date):
        text = value.isoformat()
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def write_csv(reader: pa.RecordBatchReader, out: IO[bytes]) -> int:
    import pyarrow.csv as pcsv

    # A writer per batch: a batch holding a year Arrow would print wrong has that
    # column as text (see far_dates), so the batches' schemas may differ.
    rows = 0
    pcsv.write_csv(reader.schema.empty_table(), out)  # the header
    for batch in reader:
        options = pcsv.WriteOptions(include_header=False)
        pcsv.write_csv(readable(batch, arrow_text=True), out, write_options=options)
        rows += batch.num_rows
    return rows


def write_json_lines(reader: pa.RecordBatchReader, out: IO[str]) -> int:
    """One JSON object per line (JSON Lines): streams, and `jq` and pandas read it."""
    rows = 0
    for batch in reader:
        for row in readable(batch).to_pylist():
            out.write(json.dumps(row, default=_json_value, ensure_ascii=False) + "\n")
        rows += batch.num_rows
    return rows


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        # Counts summed in SQL come back as decimals; keep whole ones whole.
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def write_parquet(reader: pa.RecordBatchReader, path: str) -> int:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(path, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows
