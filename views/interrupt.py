"""A handle to stop a running query from another thread, at once.

The caller makes one per query and passes it to `Store.read`; the store binds
its statement's cancel to it for exactly as long as the statement is open.
`fire()` from any thread then interrupts the backend mid-query (PostgreSQL's
cancel request, DuckDB's interrupt), not between batches: an aggregate sends
its first batch only when it is done. A fire before the statement starts
cancels it as it starts; one after it closed does nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["Interrupt"]


class Interrupt:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel: Callable[[], object] | None = None
        self._fired = False

    def fire(self) -> None:
        """Interrupt the bound statement now, or the next one bound."""
        with self._lock:
            self._fired = True
            if self._cancel is not None:
                _quietly(self._cancel)

    @contextlib.contextmanager
    def bound(self, cancel: Callable[[], object]) -> Iterator[None]:
        """Let `fire` call `cancel` while inside; never after, when the statement
        it cancels may be closed (the lock keeps the two apart)."""
        with self._lock:
            self._cancel = cancel
            if self._fired:
                _quietly(cancel)
        try:
            yield
        finally:
            with self._lock:
                self._cancel = None


def _quietly(cancel: Callable[[], object]) -> None:
    # A statement that finished meanwhile may refuse a cancel: nothing left to stop.
    with contextlib.suppress(Exception):
        cancel()
