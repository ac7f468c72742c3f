"""The decoded size of an IPC stream, read from its metadata: exact, and safe on garbage.

No services: `decoded_size` is pure.
"""

from __future__ import annotations

import contextlib

import pyarrow as pa
import pytest
from flightdeck.ingest.ipc_size import OverLimit, decoded_size, read_bounded

from tests.ipc_bombs import MiB, bomb_batch, compressed_stream


def _batch(rows: int) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "n": pa.array(range(rows), pa.int64()),
            "s": pa.array([f"value {i}" if i % 7 else None for i in range(rows)]),
            "d": pa.array([f"key {i % 50}" for i in range(rows)]).dictionary_encode(),
        }
    )


def _stream(batches: list[pa.RecordBatch], codec: str | None) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=codec)
    with pa.ipc.new_stream(sink, batches[0].schema, options=options) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue()


@pytest.mark.parametrize("codec", [None, "lz4", "zstd"])
def test_the_size_is_what_decoding_gives_whatever_the_codec(codec):
    batches = [_batch(10_000), _batch(3)]
    plain = decoded_size(_stream(batches, None))
    assert decoded_size(_stream(batches, codec)) == plain
    decoded = pa.ipc.open_stream(_stream(batches, codec)).read_all()
    # Within the 8-byte padding of each buffer of what decoding holds.
    assert abs(plain - decoded.nbytes) < 8 * 4 * 3 * len(batches)


def test_a_bomb_is_measured_without_being_decoded():
    bomb = compressed_stream([bomb_batch(1024 * MiB)])
    assert len(bomb) < 64 * 1024
    assert decoded_size(pa.py_buffer(bomb)) >= 1024 * MiB
    with pytest.raises(OverLimit) as refused:
        read_bounded(bomb, MiB)
    assert refused.value.limit == MiB and refused.value.found >= 1024 * MiB


def test_within_the_limit_the_stream_is_decoded():
    table = read_bounded(_stream([_batch(100)], "zstd"), MiB)
    assert table.num_rows == 100 and table.column("s").to_pylist()[1] == "value 1"


def test_garbage_raises_value_errors_not_crashes():
    """Every caller turns ValueError into its own refusal; anything else would be INTERNAL."""
    good = _stream([_batch(10)], "zstd").to_pybytes()
    for cut in range(8, len(good), max(1, len(good) // 40)):
        broken = bytearray(good)
        broken[cut] ^= 0xFF
        with contextlib.suppress(ValueError, OverLimit):
            decoded_size(pa.py_buffer(bytes(broken)))
