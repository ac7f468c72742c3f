"""A recurring event logged now and then, not every time: one line per interval at most.

NATS away means a failed reconnect every half second; a forger can send
thousands of bad updates a second. Either would otherwise bury the log (and
fill the disk) in identical lines; one line per interval, saying how many
were held back, tells the same story.
"""

from __future__ import annotations

import threading
import time

__all__ = ["LogLimit"]


class LogLimit:
    """`admit()` before logging an occurrence; `settle()` when the episode is over."""

    def __init__(self, interval: float = 30.0) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last: float | None = None
        self._held = 0

    def admit(self) -> int | None:
        """None: stay quiet this time. Else log, mentioning the returned number of
        occurrences held back since the last line."""
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self._interval:
                self._held += 1
                return None
            held, self._held, self._last = self._held, 0, now
            return held

    def settle(self) -> int:
        """The episode ended: the next occurrence is logged at once. Returns how many
        occurrences were held back since the last line."""
        with self._lock:
            held, self._held, self._last = self._held, 0, None
            return held
