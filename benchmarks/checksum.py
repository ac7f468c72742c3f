"""A content checksum of a read's result, the same function for every contender.

Equal row counts do not show that two readers got the same rows: a reader that
dropped one row and doubled another, or mangled a column, would pass. This sums
a 64-bit hash of every value per column, so it is independent of row order and
of how the result is chunked (contenders return rows in their own order and
batches), yet changes when any value of a checked column does.

Columns are normalised first, so that an Arrow table from Flight, an ADBC table
and a pandas DataFrame built from psycopg tuples compare equal: text as UTF-8,
timestamps as microseconds since the epoch in UTC, floats by their bit pattern.
`properties` is counted (non-null values) but not hashed: it is JSON text, and
each store may spell the same JSON differently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .data import EVENT_COLUMNS

__all__ = ["HASHED_COLUMNS", "checksum"]

# Every event column but `properties`, whose JSON each store may spell differently.
HASHED_COLUMNS = tuple(c for c in EVENT_COLUMNS if c != "properties")
COUNTED_COLUMNS = ("properties",)
_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)  # a null is a value of its own, not zero
_PRIME = np.uint64(1_099_511_628_211)  # FNV's 64-bit prime, as the polynomial base


def checksum(result: Any) -> dict[str, int]:
    """`{"rows": n, column: sum of value hashes mod 2**64, ...}` of a table or DataFrame."""
    table = result if isinstance(result, pa.Table) else pa.Table.from_pandas(result)
    out = {"rows": table.num_rows}
    for name in HASHED_COLUMNS:
        column = _normalised(table.column(name))
        out[name] = sum(int(_column_sum(chunk)) for chunk in column.chunks) % 2**64
    for name in COUNTED_COLUMNS:
        out[f"{name}_non_null"] = table.num_rows - table.column(name).null_count
    return out


def _normalised(column: pa.ChunkedArray) -> pa.ChunkedArray:
    t = column.type
    if pa.types.is_timestamp(t):
        if t.tz is None:  # naive: taken as UTC, as both stores hand UTC over
            column = pc.assume_timezone(column, "UTC")
        return pc.cast(pc.cast(column, pa.timestamp("us", "UTC")), pa.int64())
    if pa.types.is_floating(t):
        return pc.cast(column, pa.float64())
    if pa.types.is_integer(t):
        return pc.cast(column, pa.int64())
    return pc.cast(column, pa.string())  # large_string, string_view, pandas' str


def _column_sum(chunk: pa.Array) -> np.uint64:
    """Sum of the mixed hashes of one chunk's values, wrapping at 2**64."""
    if pa.types.is_string(chunk.type):
        hashes = _string_hashes(chunk)
    else:  # int64 or float64: the value's 8 bytes
        values = chunk.fill_null(0).to_numpy(zero_copy_only=False)
        hashes = values.view(np.uint64).copy()
    hashes = _mix(hashes)
    if chunk.null_count:
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        hashes = np.where(valid, hashes, _NULL_HASH)
    with np.errstate(over="ignore"):
        return hashes.sum(dtype=np.uint64)


def _string_hashes(chunk: pa.Array) -> np.ndarray:
    """A polynomial hash of each string's bytes, all rows at once (no Python per row)."""
    n = len(chunk)
    _, offsets_buf, data_buf = chunk.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=chunk.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8, count=end - start, offset=start)
    rel = offsets - start
    lengths = np.diff(rel)
    # Each byte weighted by base ** (its position in its string), then summed per string
    # as a difference of running sums (empty strings and nulls come out as 0).
    position = np.arange(len(data), dtype=np.int64) - np.repeat(rel[:-1], lengths)
    powers = _powers(int(lengths.max()) if n else 0)
    with np.errstate(over="ignore"):
        weighted = (data.astype(np.uint64) + np.uint64(1)) * powers[position]
        running = np.concatenate(([np.uint64(0)], np.cumsum(weighted, dtype=np.uint64)))
        return running[rel[1:]] - running[rel[:-1]] + lengths.astype(np.uint64)


def _powers(length: int) -> np.ndarray:
    """base ** 0 … base ** (length - 1), wrapping at 2**64."""
    with np.errstate(over="ignore"):
        rest = np.cumprod(np.full(max(length - 1, 0), _PRIME, dtype=np.uint64))
    return np.concatenate((np.ones(1, dtype=np.uint64), rest))


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a sum of raw polynomial hashes would let bytes swapped
    between rows cancel out; mixed hashes do not."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))
