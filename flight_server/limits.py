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
        self._lock = threading.Lock()
        self._taken = 0

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            raise flight.FlightUnavailableError(
                f"too many concurrent {self._what}: the limit is {self._limit} "
                f"({self._flag}); retry shortly"
            )
        with self._lock:
            self._taken += 1
        try:
            yield
        finally:
            with self._lock:
                self._taken -= 1
            self._free.release()

    def in_use(self) -> int:
        with self._lock:
            return self._taken

    def exhausted(self) -> str | None:
        """Why the next call would be refused, or None while a slot is free."""
        with self._lock:
            if self._taken < self._limit:
                return None
        return f"all {self._limit} slots for {self._what} are in use ({self._flag})"
