"""Rebatching: small batches joined, large ones split, order and content kept."""

from __future__ import annotations

import contextlib
import threading
import time

import pyarrow as pa
from flightdeck.flight_server.streaming import rebatch, watched_batches
from flightdeck.views import Interrupt


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


class _LeavingCall:
    """A call whose client leaves: is_cancelled() turns true once `leave()` is called."""

    def __init__(self) -> None:
        self.left = threading.Event()

    def is_cancelled(self) -> bool:
        return self.left.is_set()


@contextlib.contextmanager
def _computing(interrupt: Interrupt, interrupted: threading.Event):
    """A store reader still computing its first batch until the interrupt reaches it."""
    schema = pa.schema([("n", pa.int64())])

    def batches():
        interrupted.wait(10)
        yield pa.record_batch([pa.array([1])], schema=schema)

    with interrupt.bound(interrupted.set):
        yield pa.RecordBatchReader.from_batches(schema, batches())


def test_a_client_leaving_mid_query_always_interrupts_the_store():
    """Two threads notice a cancelled call: the query's watcher and the read-ahead's
    reader. Whichever sees it first, the store's query is interrupted; it once raced,
    and when the reader won the stream ended as if complete and the query ran on."""
    for attempt in range(20):
        call, interrupt, interrupted = _LeavingCall(), Interrupt(), threading.Event()
        opened = _computing(interrupt, interrupted)
        _, batches = watched_batches(call, opened, 1000, 1 << 20, 30, interrupt)
        # Both threads poll every 0.1 s: start reading at varied phases of the watcher's.
        time.sleep(0.01 * (attempt % 10))
        reading = threading.Thread(target=list, args=(batches,), daemon=True)
        reading.start()
        time.sleep(0.25)
        call.left.set()
        reading.join(5)
        assert interrupted.wait(2), f"attempt {attempt}: the store's query was not interrupted"
