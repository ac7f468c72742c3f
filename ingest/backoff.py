"""The one retry policy of the NATS runtime: wait longer after each failure, up to a cap.

Connecting to NATS, creating the streams, the ingest worker and the outbox
publisher all retry the same way while NATS or the store is away: the delay
doubles from `first_s` up to `cap_s` and starts again after a success. An
outage fails every few seconds for as long as it lasts, so only the first
failure and then every `log_every`-th one is worth a log line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Backoff", "Retry", "until_done"]

T = TypeVar("T")


@dataclass(frozen=True)
class Retry:
    """What to do after a failure."""

    delay: float  # seconds to wait before the next attempt
    failures: int  # failures in a row, this one included
    log: bool  # this failure is worth a log line


class Backoff:
    """`failed()` after each failure, `succeeded()` after a success. Pure: it never sleeps."""

    def __init__(self, first_s: float = 0.2, cap_s: float = 5.0, log_every: int = 10) -> None:
        if first_s <= 0 or cap_s < first_s or log_every < 1:
            raise ValueError(
                f"backoff needs 0 < first_s <= cap_s and log_every >= 1, "
                f"got first_s={first_s} cap_s={cap_s} log_every={log_every}"
            )
        self._first = first_s
        self._cap = cap_s
        self._log_every = log_every
        self._failures = 0

    def failed(self) -> Retry:
        self._failures += 1
        n = self._failures
        # Past the cap the exponent is irrelevant; bounding it keeps the float finite.
        delay = min(self._first * 2.0 ** min(n - 1, 64), self._cap)
        return Retry(delay, n, n == 1 or n % self._log_every == 0)

    def succeeded(self) -> None:
        self._failures = 0


async def until_done(
    attempt: Callable[[], Awaitable[T]],
    say: Callable[[Retry, Exception], None],
    errors: tuple[type[Exception], ...] = (Exception,),
) -> T:
    """What `attempt()` returns once it succeeds, retried on `errors` as Backoff says;
    `say(retry, error)` for the failures worth a log line. Cancellation passes through."""
    backoff = Backoff()
    while True:
        try:
            return await attempt()
        except errors as exc:
            retry = backoff.failed()
            if retry.log:
                say(retry, exc)
            await asyncio.sleep(retry.delay)
