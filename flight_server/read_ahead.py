"""Produce a stream's next batches on a helper thread while gRPC sends the current one.

Without it one thread alternates: wait for the store's next batch, then
serialise and write it. Both halves release the GIL (DuckDB's scan, libpq,
Arrow IPC, gRPC), so overlapping them is most of what separates a DoGet from
an in-memory Flight server.

The thread is also where a reader that stopped reading shows: gRPC's write
blocks, the queue fills, and the thread waits. It waits at most `idle_timeout`
seconds for room, then gives up and closes the source, so a client that reads
nothing cannot keep a query slot and a store connection; one that reads slowly
makes room every batch and is never given up on.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["ReadAhead", "Stalled"]

log = logging.getLogger("flightdeck.server")

T = TypeVar("T")
_END = object()  # the source ran to its end
_LEFT = object()  # the reader's call was cancelled before the end
_POLL_S = 0.1


class Stalled(TimeoutError):
    """The reader took nothing for `seconds`: the stream was given up and its source closed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the reader took nothing for {seconds:g} s")
        self.seconds = seconds


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """Iterate `source` on a daemon thread, at most `depth` items ahead of the reader.

    The thread owns `finish` (closing the source's resources) and calls it once:
    `finish(True)` when the source ran to its end, `finish(False)` when it failed,
    was stopped, or stalled, so the owner can cancel rather than drain. Resources
    are never closed while the thread is still inside the source.

    `idle_timeout`: seconds the thread waits for the reader to make room before it
    gives up (None: forever); the reader then gets Stalled. `cancelled`: polled
    while the reader waits for an item; when true, the reader ends quietly
    and `completed` stays False.
    """

    def __init__(
        self,
        source: Iterable[T],
        finish: Callable[[bool], object],
        depth: int = 3,
        name: str = "",
        *,
        idle_timeout: float | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self._items: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        # True once the reader took the source's end; a reader whose call was
        # cancelled stops early and quietly, and must not pass for one that finished.
        self.completed = False
        self._stopped = threading.Event()
        self._idle_timeout = idle_timeout
        self._cancelled = cancelled
        self._thread = threading.Thread(
            target=self._produce, args=(source, finish), name=name or "read-ahead", daemon=True
        )
        self._thread.start()

    def _produce(self, source: Iterable[T], finish: Callable[[bool], object]) -> None:
        try:
            ended = self._drain(source)
        except BaseException as exc:  # handed to the reader, who raises it
            _finish(finish, False)
            self._offer(_Failed(exc))
            return
        # Close before the last offer: a reader that never takes it holds nothing.
        _finish(finish, ended)
        if ended:
            self._offer(_END)

    def _drain(self, source: Iterable[T]) -> bool:
        """Hand every item to the queue; False when stopped or stalled on the way."""
        return all(self._offer(item) for item in source)

    def _offer(self, item: object) -> bool:
        waiting_since = time.monotonic()
        while not self._stopped.is_set():
            try:
                self._items.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                waited = time.monotonic() - waiting_since
                if self._idle_timeout is not None and waited >= self._idle_timeout:
                    self._give_up()
                    return False
        return False

    def _give_up(self) -> None:
        """Stop, and leave the reader only the reason (it may come back to read)."""
        log.info(
            "%s: the client read nothing for %g s; stream cancelled",
            self._thread.name,
            self._idle_timeout,
        )
        self.stop()
        with contextlib.suppress(queue.Full):  # the reader only takes: there is room
            self._items.put_nowait(_Failed(Stalled(self._idle_timeout or 0.0)))

    def __iter__(self) -> Iterator[T]:
        try:
            while True:
                item = self._next()
                if item is _END:
                    self.completed = True
                    return
                if item is _LEFT:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            self.stop()

    def _next(self) -> object:
        """The next item; _LEFT if the reader's call was cancelled meanwhile."""
        while True:
            try:
                return self._items.get(timeout=_POLL_S if self._cancelled else None)
            except queue.Empty:
                if self._cancelled is not None and self._cancelled():
                    return _LEFT

    def stop(self) -> None:
        """Ask the thread to finish; it closes the source within one item."""
        self._stopped.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._items.get_nowait()


def _finish(finish: Callable[[bool], object], ended: bool) -> None:
    with contextlib.suppress(Exception):
        finish(ended)
