"""Stream a store reader to a Flight client in bounded batches, and stop when it leaves.

Backends hand out batches of their own size: DuckDB 2,048 rows, PostgreSQL
about 16 MB. Flight moves most bytes per second with batches of tens of
thousands of rows, and Java/Go gRPC clients refuse messages over 4 MB, so
small batches are joined and large ones split, by rows and by bytes.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Generator, Iterable, Iterator
from typing import Protocol

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.views import Interrupt

from .errors import flight_errors
from .query_watch import QueryWatch
from .read_ahead import ReadAhead, Stalled

__all__ = ["Call", "rebatch", "watched_batches"]


class Call(Protocol):
    """What a stream needs of the call it serves: a Flight ServerCallContext, or
    the HTTP face's request (flight_server/http/call.py)."""

    def is_cancelled(self) -> bool: ...

    def add_trailer(self, key: str, value: bytes) -> None: ...


def rebatch(
    batches: Iterable[pa.RecordBatch], max_rows: int, max_bytes: int
) -> Iterator[pa.RecordBatch]:
    """Batches of at most `max_rows` rows and about `max_bytes` bytes, in order."""
    pending: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in batches:
        count, nbytes = batch.num_rows, batch.nbytes
        if count == 0:
            continue
        too_big = count > max_rows or nbytes > max_bytes
        if pending and (too_big or rows + count > max_rows or size + nbytes > max_bytes):
            yield _join(pending)
            pending, rows, size = [], 0, 0
        if too_big:
            yield from _split(batch, max_rows, max_bytes)
            continue
        pending.append(batch)
        rows += count
        size += nbytes
    if pending:
        yield _join(pending)


def _split(batch: pa.RecordBatch, max_rows: int, max_bytes: int) -> Iterator[pa.RecordBatch]:
    row_bytes = max(1, batch.nbytes // batch.num_rows)
    step = max(1, min(max_rows, max_bytes // row_bytes))
    for start in range(0, batch.num_rows, step):
        yield batch.slice(start, step)


def _join(pending: list[pa.RecordBatch]) -> pa.RecordBatch:
    return pending[0] if len(pending) == 1 else pa.concat_batches(pending)


def watched_batches(
    context: Call,
    opened: contextlib.AbstractContextManager[pa.RecordBatchReader],
    max_rows: int,
    max_bytes: int,
    idle_timeout: float,
    interrupt: Interrupt | None = None,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and batches of a DoGet over an opened store reader.

    The reader is opened here, so a bad query fails the call itself; its batches
    are then read and regrouped on a helper thread, which closes the reader. A
    client that takes no batch for `idle_timeout` seconds (--stream-idle-timeout)
    loses the stream, and with it the query slot and the store connection.

    `interrupt`, the one `opened` was given, stops the query in the store: fired
    by a watcher the moment the client cancels or leaves (even while the store
    is still computing the first batch), and whenever the stream ends early.
    """
    interrupt = interrupt or Interrupt()
    watch = QueryWatch(context, interrupt)
    exits = contextlib.ExitStack()
    try:
        reader = exits.enter_context(opened)
    except BaseException:
        watch.stop()
        raise

    def finish(ended: bool) -> None:
        if ended:
            exits.close()
        else:  # an error, not a clean exit, so the store cancels the query
            exits.__exit__(_Abandoned, _Abandoned(), None)

    ahead = ReadAhead(
        rebatch(reader, max_rows, max_bytes),
        finish,
        name="doget-read-ahead",
        idle_timeout=idle_timeout,
        cancelled=context.is_cancelled,
    )

    def stop() -> None:
        """The call ends: stop watching it, and the query if it still runs."""
        watch.stop()
        ahead.stop()
        if not ended_cleanly:
            interrupt.fire()

    ended_cleanly = False

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal ended_cleanly
        try:
            with flight_errors("DoGet", context):
                ended_cleanly = yield from _delivered(ahead, context)
        finally:
            stop()

    generator = batches()
    # A stream the client abandons before its first batch never runs the
    # generator's body; the finalizer still stops the watcher, read-ahead and query.
    weakref.finalize(generator, stop)
    return reader.schema, generator


def _delivered(
    ahead: ReadAhead[pa.RecordBatch], context: flight.ServerCallContext
) -> Generator[pa.RecordBatch, None, bool]:
    """The read-ahead's batches; True when they all went, False when the client
    left first (the caller's stop() then interrupts the query in the store)."""
    try:
        for batch in ahead:
            if context.is_cancelled():
                return False
            yield batch
    except Stalled as stalled:
        raise flight.FlightTimedOutError(
            f"the stream was cancelled: the client read nothing for {stalled.seconds:g} s "
            "(--stream-idle-timeout), so its query slot and connection were given back; "
            "read results as they arrive, or run the query again"
        ) from None
    # The read-ahead also ends early, quietly, when it sees the call cancelled first.
    return ahead.completed


class _Abandoned(Exception):
    """Thrown into the store's reader when a stream ends before its result does."""
