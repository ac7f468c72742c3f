"""Produce a stream's next batches on a helper thread while gRPC sends the current one.

Without it one thread alternates: wait for the store's next batch, then
serialise and write it. Both halves release the GIL (DuckDB's scan, libpq,
Arrow IPC, gRPC), so overlapping them is most of what separates a DoGet from
an in-memory Flight server.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["ReadAhead"]

T = TypeVar("T")
_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """Iterate `source` on a daemon thread, at most `depth` items ahead of the reader.

    The thread owns `finish` (closing the source's resources) and calls it when the
    source ends, fails, or `stop()` is called, so resources are never closed while
    the thread is still inside the source.
    """

    def __init__(
        self, source: Iterable[T], finish: Callable[[], object], depth: int = 3, name: str = ""
    ) -> None:
        self._items: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(source, finish), name=name or "read-ahead", daemon=True
        )
        self._thread.start()

    def _produce(self, source: Iterable[T], finish: Callable[[], object]) -> None:
        try:
            for item in source:
                if not self._offer(item):
                    return
            self._offer(_END)
        except BaseException as exc:  # handed to the reader, who raises it
            self._offer(_Failed(exc))
        finally:
            with contextlib.suppress(Exception):
                finish()

    def _offer(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        try:
            while True:
                item = self._items.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            self.stop()

    def stop(self) -> None:
        """Ask the thread to finish; it closes the source within one item."""
        self._stopped.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._items.get_nowait()
