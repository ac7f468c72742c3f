"""One HTTP request as the query and live streams see a call: cancellable, no trailers."""

from __future__ import annotations

import threading

__all__ = ["HttpCall"]


class HttpCall:
    """Stands where Flight's ServerCallContext stands (streaming.Call): cancelled
    when the client goes away, so the store's query is interrupted at once."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def is_cancelled(self) -> bool:
        return self._cancelled.is_set()

    def add_trailer(self, key: str, value: bytes) -> None:
        # HTTP/1.1 has no trailers a client reads; a refusal's detail goes in its JSON body
        # (errors.py), and an error after the first byte can only cut the body short.
        pass
