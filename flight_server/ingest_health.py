"""Whether the NATS worker's batches are going through, for `health` and the metrics.

A batch the worker cannot commit is handed back to NATS and redelivered; while that
keeps happening its events count nowhere, so health must not say "ok". Fed by the
worker's `on_batch_end` callback (on the NATS loop), read by health (any thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["IngestHealth"]


class IngestHealth:
    def __init__(self, redelivered: Callable[[int], None] | None = None) -> None:
        """`redelivered` counts the messages handed back (the metrics' counter)."""
        self._redelivered = redelivered
        self._lock = threading.Lock()
        self._failing: str | None = None  # the last failed batch, until one goes through
        self._failures = 0

    def batch_ended(self, redelivered: int, reason: str | None) -> None:
        """The worker's `on_batch_end`: (0, None) for an acked batch."""
        if redelivered and self._redelivered is not None:
            self._redelivered(redelivered)
        with self._lock:
            if reason is None:
                self._failing, self._failures = None, 0
            else:
                self._failing, self._failures = reason, self._failures + 1

    def status(self) -> str:
        """ "ok", or which batch keeps failing and why."""
        with self._lock:
            if self._failing is None:
                return "ok"
            return f"failing ({self._failures} times in a row, redelivered): {self._failing}"
