"""Failed logins, throttled: a password check is a scrypt, and scrypt is slow on purpose.

Two bounds. Per user name, a token bucket of failed attempts: each name may
fail `attempts` times, then one more time each `refill_s`; past that a login
is refused at once, without a scrypt, whatever the password. An attempt
counts from the moment it starts (a success gives it back), so a parallel
flood cannot all start before the first failure is recorded. And across all
names, at most `concurrent` checks run at once: a flood of made-up names costs
those cores at most, and whoever waits past `wait_s` is told to retry.

Keyed by the user name, not the peer's address: pyarrow tells neither Flight
middleware nor the Handshake handler who the peer is (`CallInfo` holds only
the method), and the Handshake is where drivers send basic credentials.
Unknown names are throttled exactly like known ones, so a refusal says
nothing about whether a name exists.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["LoginThrottle", "LoginsBusy", "TooManyFailures"]


class TooManyFailures(Exception):
    """`key` has used its failed attempts; the next one is allowed in `retry_after` seconds."""

    def __init__(self, key: str, retry_after: int) -> None:
        super().__init__(f"too many failed logins for {key!r}; retry in {retry_after} s")
        self.key = key
        self.retry_after = retry_after


class LoginsBusy(Exception):
    """Every password-check slot stayed taken for longer than the throttle waits."""

    def __init__(self, concurrent: int) -> None:
        super().__init__(
            f"too many logins in progress ({concurrent} checked at a time); retry in a moment"
        )
        self.concurrent = concurrent


class LoginThrottle:
    def __init__(
        self,
        *,
        attempts: int = 5,
        refill_s: float = 12.0,
        concurrent: int | None = None,
        wait_s: float = 5.0,
        max_names: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`concurrent` None: half the machine's cores, at least one."""
        self._attempts = attempts
        self._refill_s = refill_s
        self._concurrent = concurrent or max(1, (os.cpu_count() or 2) // 2)
        self._slots = threading.BoundedSemaphore(self._concurrent)
        self._wait_s = wait_s
        self._max_names = max_names
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> tokens, at

    @property
    def tracked(self) -> int:
        """How many names have failed attempts remembered."""
        return len(self._buckets)

    def verify(self, key: str, check: Callable[[], bool]) -> bool:
        """`check()` (a password check) if `key` may still try and a slot frees in time.

        Raises TooManyFailures or LoginsBusy without calling `check`.
        """
        self._take(key)
        if not self._slots.acquire(timeout=self._wait_s):
            self._give_back(key)  # never attempted
            raise LoginsBusy(self._concurrent)
        passed = False
        try:
            passed = check()
        finally:
            self._slots.release()
            if passed:
                self._give_back(key)
        return passed

    def _take(self, key: str) -> None:
        with self._lock:
            tokens = self._tokens(key)
            if tokens < 1:
                # Rounded first: 0.6 * 10 is 6.000000000000001 in floats, not 7 s.
                raise TooManyFailures(key, math.ceil(round((1 - tokens) * self._refill_s, 6)))
            self._store(key, tokens - 1)

    def _give_back(self, key: str) -> None:
        with self._lock:
            tokens = min(self._attempts, self._tokens(key) + 1)
            if tokens >= self._attempts:
                self._buckets.pop(key, None)  # a full bucket is the default: forget it
            else:
                self._store(key, tokens)

    def _tokens(self, key: str) -> float:
        """`key`'s attempts left now, refilled since last seen (caller holds the lock)."""
        if key not in self._buckets:
            return float(self._attempts)
        tokens, at = self._buckets[key]
        return min(float(self._attempts), tokens + (self._clock() - at) / self._refill_s)

    def _store(self, key: str, tokens: float) -> None:
        self._buckets[key] = (tokens, self._clock())
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_names:
            self._forget()

    def _forget(self) -> None:
        # Drop refilled buckets first; if a flood of names keeps them all
        # recent, drop the oldest: memory stays bounded, the newest are kept.
        for key in [k for k in self._buckets if self._tokens(k) >= self._attempts]:
            del self._buckets[key]
        while len(self._buckets) > self._max_names:
            self._buckets.popitem(last=False)
