"""Decompression bombs: Arrow IPC streams that are small on the wire and huge decoded.

Built from numpy zeros (calloc'd, so the test process never touches a gigabyte)
and compressed by pyarrow's own writer, as an attacker's client would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

MiB = 1024 * 1024


def zeros_column(decoded_bytes: int) -> pa.Array:
    """One binary value of `decoded_bytes` zero bytes."""
    data = pa.py_buffer(np.zeros(decoded_bytes, np.uint8))
    offsets = pa.array([0, decoded_bytes], pa.int32()).buffers()[1]
    return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, data])


def bomb_batch(decoded_bytes: int, **small_columns: pa.Array) -> pa.RecordBatch:
    """`small_columns` (one row each) and a `junk` column of `decoded_bytes` zeros."""
    columns = {**small_columns, "junk": zeros_column(decoded_bytes)}
    return pa.record_batch(list(columns.values()), names=list(columns))


def compressed_stream(batches: list[pa.RecordBatch], codec: str = "zstd") -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=codec)
    with pa.ipc.new_stream(sink, batches[0].schema, options=options) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def event_bomb(decoded_bytes: int) -> pa.RecordBatch:
    """A valid page-view event beside `decoded_bytes` of zeros in an extra column."""
    return bomb_batch(
        decoded_bytes,
        session_id=pa.array(["s"]),
        page_url=pa.array(["/bomb"]),
        recorded_at=pa.array(["2024-01-15T10:00:00Z"]),
    )


@contextlib.contextmanager
def peak_growth_mb() -> Iterator[list[float]]:
    """How far this process's resident memory rose above where it was, at its peak.

    The server under test runs in this process (gRPC threads, the NATS worker's
    loop): Linux's VmHWM, reset through clear_refs, is its high-water mark.
    """
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    found: list[float] = []
    yield found
    found.append((_status_kb("VmHWM") - before) / 1024)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")
