"""`Client.track`: events queued on the caller's thread, sent by a daemon thread in batches.

`track()` only checks its arguments and appends to a bounded queue; it never
waits on the network and never raises for a send that failed. A daemon thread
takes up to `batch` events when that many are waiting or every `interval_s`,
groups them by type and sends one DoPut per type (a put names one type, and a
type the server refuses must not take the others down with it).

The queue holds at most `max_queue` events; when it is full the oldest event
is dropped (and counted): during an outage the newest events are the ones
live views want, and the caller is never slowed. A failed put is retried with
backoff (see track_put.verdict): indefinitely while the server is down or
times out, `max_attempts` times when the server fails, never when it refuses
the batch (its reason is logged and passed to `on_error`). Every event keeps
its `event_id` across retries, so a put whose outcome was unknown dedupes on
the server when sent again.

`close()` and interpreter exit send what is queued within a bound
(`close_timeout_s`), then give up: a daemon thread never keeps a process alive.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pyarrow.flight as flight

from . import track_put
from .errors import DETAIL_TRAILERS, Error, LoadError, ServerError
from .track_events import check_event_type, event_row, rows_table, warm_up

__all__ = ["TrackFailure", "TrackStats", "Tracker"]

log = logging.getLogger("flightdeck.tracker")

_CALL_TIMEOUT_S = 30.0  # a server that hangs must not hold the queue forever
_FIRST_BACKOFF_S = 0.2


@dataclass(frozen=True)
class TrackStats:
    """Counts of events since the tracker started. `sent`: the server stored them or
    already had them; `failed`: sent and refused, or given up after retries;
    `dropped`: never confirmed sent (pushed out of a full queue, tracked after close,
    or still waiting when close's bound ran out); `retried`: puts sent again."""

    queued: int
    sent: int
    failed: int
    dropped: int
    retried: int


class TrackFailure(NamedTuple):
    """What `on_error` receives when events are given up: how many, of which type, and
    the client Error (for a refused batch it names the server's rule, column and row)."""

    event_type: str
    events: int
    error: Error


class Tracker:
    """The background sender behind `Client.track`; usable alone as well."""

    def __init__(
        self,
        location: str,
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        batch: int = 500,
        interval_s: float = 1.0,
        max_queue: int = 10_000,
        max_attempts: int = 5,
        retry_max_s: float = 30.0,
        close_timeout_s: float = 5.0,
        on_error: Callable[[TrackFailure], Any] | None = None,
    ) -> None:
        if batch < 1 or max_queue < 1 or max_attempts < 1 or interval_s <= 0:
            raise ValueError("batch, max_queue and max_attempts must be ≥ 1, interval_s > 0")
        self.location = location
        self.batch, self.interval_s, self.max_queue = batch, interval_s, max_queue
        self.max_attempts, self.retry_max_s = max_attempts, retry_max_s
        self.close_timeout_s = close_timeout_s
        self.on_error = on_error
        self._headers = headers
        self._queue: collections.deque[tuple[str, dict]] = collections.deque()
        self._wake = threading.Condition()
        self._counts = collections.Counter()
        self._tracked = 0  # events accepted by track(); flush() waits until all are settled
        self._dequeued = 0  # events taken out of the queue, sent or dropped
        self._flush_upto = 0  # flush(): send at once until this many were dequeued
        self._deadline: float | None = None  # set by close(): give up waiting after it
        self._closed = False
        self._thread: threading.Thread | None = None
        self._flight: flight.FlightClient | None = None

    # -- the caller's side -----------------------------------------------------

    def track(self, event_type: str, **fields: Any) -> str:
        """Queue one event; its `event_id`. Raises only for arguments no server could take
        (a bad type name, a `recorded_at` that is no time); sending never raises here."""
        row = event_row(fields)
        check_event_type(event_type)
        with self._wake:
            if self._closed:
                self._count("dropped", 1)
                log.warning("tracker closed: %s event %s dropped", event_type, row["event_id"])
                return row["event_id"]
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self._dequeued += 1
                self._count("dropped", 1)
            self._queue.append((event_type, row))
            self._tracked += 1
            self._start()
            if len(self._queue) >= self.batch:
                self._wake.notify_all()
        return row["event_id"]

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send what is queued now; True once every event tracked so far was sent or
        given up, False if `timeout_s` ran out first."""
        with self._wake:
            target = self._flush_upto = self._tracked
            self._wake.notify_all()
            return self._wake.wait_for(lambda: self._settled() >= target, timeout_s)

    def stats(self) -> TrackStats:
        with self._wake:
            counts = self._counts
            return TrackStats(
                len(self._queue), counts["sent"], counts["failed"], counts["dropped"],
                counts["retried"],
            )  # fmt: skip

    def close(self, timeout_s: float | None = None) -> TrackStats:
        """Send what is queued, waiting at most `timeout_s` (default `close_timeout_s`);
        events still unsent then are dropped. Later `track()` calls are dropped too."""
        bound = self.close_timeout_s if timeout_s is None else timeout_s
        with self._wake:
            self._closed = True
            self._deadline = time.monotonic() + bound
            self._wake.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(bound + 1.0)  # the worker gives up at the deadline; a call may end late
        _LIVE.discard(self)
        return self.stats()

    # -- the sender's side -----------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            warm_up()
            self._thread = threading.Thread(
                target=self._run, name="flightdeck-tracker", daemon=True
            )
            self._thread.start()
            _LIVE.add(self)

    def _run(self) -> None:
        try:
            while (taken := self._take()) is not None:
                self._send(taken)
        finally:
            self._give_up_queue()
            self._drop_channel()

    def _take(self) -> list[tuple[str, dict]] | None:
        """The next batch: at once when full, flushed or closing, else after `interval_s`
        with what there is (maybe nothing). None: stop."""
        with self._wake:
            self._wake.wait_for(self._due, self.interval_s)
            if self._closed and (not self._queue or self._past_deadline()):
                return None
            count = min(self.batch, len(self._queue))
            self._dequeued += count
            return [self._queue.popleft() for _ in range(count)]

    def _due(self) -> bool:
        return (
            len(self._queue) >= self.batch
            or self._closed
            or (bool(self._queue) and self._flush_upto > self._dequeued)
        )

    def _send(self, taken: list[tuple[str, dict]]) -> None:
        groups: dict[str, list[dict]] = {}
        for event_type, row in taken:
            groups.setdefault(event_type, []).append(row)
        for event_type, rows in groups.items():
            self._send_group(event_type, rows)

    def _send_group(self, event_type: str, rows: list[dict]) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self._put(event_type, rows_table(rows))
                self._settle("sent", len(rows))
                return
            except Error as exc:
                error, how = exc, track_put.verdict(exc)  # `exc` is unbound after its block
            except Exception as exc:  # the sender thread must outlive anything
                error = ServerError(f"the put failed in the client: {exc!r}")
                how = track_put.RETRY_SOME
            bad = _named_row(error, rows) if how == track_put.GIVE_UP else None
            if bad is not None:  # one event refused: give it up, send the others again
                self._fail("failed", event_type, 1, error)
                rows = rows[:bad] + rows[bad + 1 :]
                continue
            if how == track_put.GIVE_UP or (
                how == track_put.RETRY_SOME and attempt >= self.max_attempts
            ):
                self._fail("failed", event_type, len(rows), error)
                return
            if not self._backoff(attempt, event_type, len(rows), error):
                self._fail("dropped", event_type, len(rows), error)
                return

    def _put(self, event_type: str, table) -> None:
        if self._flight is None:
            self._flight = flight.connect(self.location, middleware=[DETAIL_TRAILERS])
        try:
            options = flight.FlightCallOptions(headers=self._headers, timeout=self._call_timeout())
            track_put.put_events(self._flight, event_type, table, options, self.location)
        except Error as error:
            if track_put.verdict(error) != track_put.GIVE_UP:
                # A fresh channel reconnects at once; gRPC's own backoff after a
                # refused connection grows to minutes.
                self._drop_channel()
            raise

    def _drop_channel(self) -> None:
        if self._flight is not None:
            with contextlib.suppress(Exception):
                self._flight.close()
            self._flight = None

    def _call_timeout(self) -> float:
        """A put's deadline: the call timeout, or what is left of close's bound."""
        with self._wake:
            if self._deadline is None:
                return _CALL_TIMEOUT_S
            return min(_CALL_TIMEOUT_S, max(0.1, self._deadline - time.monotonic()))

    def _backoff(self, attempt: int, event_type: str, events: int, error: Error) -> bool:
        """Wait before the next attempt; False when close's deadline leaves no time."""
        delay = min(self.retry_max_s, _FIRST_BACKOFF_S * 2 ** (attempt - 1))
        delay *= random.uniform(0.8, 1.2)  # many clients of one server do not retry in step
        log.warning(
            "tracker: %d %s events not sent (%s); retry %d in %.1f s",
            events, event_type, error, attempt, delay,
        )  # fmt: skip
        end = time.monotonic() + delay
        with self._wake:
            while (left := end - time.monotonic()) > 0:
                if self._deadline is not None and self._deadline < end:
                    return False  # closing: no time for this wait and another put
                self._wake.wait(left)  # close() wakes us, so its bound holds
            self._count("retried", 1)
            return True

    def _fail(self, outcome: str, event_type: str, events: int, error: Error) -> None:
        log.warning("tracker: %d %s events %s: %s", events, event_type, outcome, error)
        self._settle(outcome, events)
        if self.on_error is not None:
            try:
                self.on_error(TrackFailure(event_type, events, error))
            except Exception:  # a faulty callback must not stop the sender
                log.exception("tracker: on_error raised")

    def _give_up_queue(self) -> None:
        with self._wake:
            left = len(self._queue)
            self._queue.clear()
        if left:
            log.warning("tracker: %d events still queued at close were dropped", left)
            self._settle("dropped", left)

    # -- counting (callers hold or take self._wake) ----------------------------

    def _settle(self, outcome: str, events: int) -> None:
        with self._wake:
            self._count(outcome, events)
            self._wake.notify_all()

    def _count(self, outcome: str, events: int) -> None:
        self._counts[outcome] += events

    def _settled(self) -> int:
        return self._counts["sent"] + self._counts["failed"] + self._counts["dropped"]

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline


def _named_row(error: Error, rows: list[dict]) -> int | None:
    """The one event a refusal names, when others were sent with it; the put was atomic,
    so none of them was stored."""
    row = error.row
    if isinstance(error, LoadError) and row is not None and len(rows) > 1 and 0 <= row < len(rows):
        return row
    return None


# Trackers with a running sender: sent what they hold at interpreter exit.
_LIVE: weakref.WeakSet[Tracker] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for tracker in list(_LIVE):
        tracker.close()
