"""An asyncio loop on a thread of its own, for a process whose other threads are synchronous.

Flight handlers run on gRPC threads; nats-py is asyncio. The handlers reach the
loop only through `call` (run a coroutine there and wait for its result) and
`poke` (schedule a plain callback there); nothing else touches it off its thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name)

    def start(self) -> LoopThread:
        self._thread.start()
        return self

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Thread-safe: run `coroutine` on the loop and wait for what it returns or raises."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def poke(self, callback: Callable[[], object]) -> None:
        """Thread-safe: run `callback` on the loop soon; does not wait."""
        self._loop.call_soon_threadsafe(callback)

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop and its thread. Work handed to threads (`asyncio.to_thread`)
        finishes first: callers close what that work uses (the store) next."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.call(self._loop.shutdown_default_executor(), timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._loop.close()
