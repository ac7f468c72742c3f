"""A blocking iterator served to an async response, one item at a time off the event loop."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import anyio.to_thread

__all__ = ["pumped"]

_END = object()


async def pumped(items: Iterator[bytes], on_leave: Callable[[], None]) -> AsyncIterator[bytes]:
    """`items`, each `next` on a worker thread. When the response ends early (the
    client left: Starlette cancels us), `on_leave` runs at once, which interrupts
    the store's query, and `items` is closed once its current `next` returns."""
    lock = threading.Lock()  # `next` and `close` never overlap

    def pull() -> object:
        with lock:
            return next(items, _END)

    def close() -> None:
        with lock:
            items.close()  # type: ignore[attr-defined]

    finished = False
    try:
        while (item := await anyio.to_thread.run_sync(pull, abandon_on_cancel=True)) is not _END:
            if item:
                yield item  # type: ignore[misc]
        finished = True
    finally:
        if not finished:
            on_leave()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(close)
