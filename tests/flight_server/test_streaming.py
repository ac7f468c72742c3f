"""Rebatching: small batches joined, large ones split, order and content kept."""

from __future__ import annotations

import pyarrow as pa
from flightdeck.flight_server.streaming import rebatch


def _batches(sizes: list[int]) -> list[pa.RecordBatch]:
    out, start = [], 0
    for n in sizes:
        out.append(pa.record_batch({"i": pa.array(range(start, start + n), pa.int64())}))
        start += n
    return out


def _values(batches) -> list[int]:
    return [v for b in batches for v in b.column(0).to_pylist()]


def test_small_batches_are_joined_up_to_the_row_limit():
    out = list(rebatch(_batches([2048] * 40), max_rows=65_536, max_bytes=1 << 30))
    assert [b.num_rows for b in out] == [65_536, 81_920 - 65_536]
    assert _values(out) == list(range(81_920))


def test_large_batches_are_split_by_rows_and_bytes():
    out = list(rebatch(_batches([200_000]), max_rows=65_536, max_bytes=1 << 30))
    assert max(b.num_rows for b in out) == 65_536
    assert _values(out) == list(range(200_000))
    by_bytes = list(rebatch(_batches([200_000]), max_rows=65_536, max_bytes=80_000))
    assert all(b.nbytes <= 80_000 for b in by_bytes)
    assert _values(by_bytes) == list(range(200_000))


def test_empty_batches_vanish_and_order_is_kept():
    out = list(rebatch(_batches([0, 5, 0, 3]), max_rows=4, max_bytes=1 << 30))
    assert _values(out) == list(range(8))
    assert all(0 < b.num_rows <= 4 for b in out)


def test_a_large_batch_after_small_ones_keeps_the_order():
    out = list(rebatch(_batches([3, 2, 10, 1]), max_rows=4, max_bytes=1 << 30))
    assert _values(out) == list(range(16))
    assert [b.num_rows for b in out] == [3, 2, 4, 4, 2, 1]
