"""Bounded concurrency: a fixed number of slots per kind of call, refused when full.

A refusal says which limit and which flag, and is UNAVAILABLE: the client may
retry shortly, when a slot is free. Waiting instead would tie up gRPC threads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pyarrow.flight as flight

__all__ = ["Slots"]


class Slots:
    def __init__(self, limit: int, what: str, flag: str) -> None:
        self._free = threading.BoundedSemaphore(limit)
        self._limit = limit
        self._what = what
        self._flag = flag

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            raise flight.FlightUnavailableError(
                f"too many concurrent {self._what}: the limit is {self._limit} "
                f"({self._flag}); retry shortly"
            )
        try:
            yield
        finally:
            self._free.release()
