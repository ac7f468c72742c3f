"""Which DoGets run which ticket, for whom: so a cancel naming a ticket can stop them.

CancelFlightInfo (and Flight SQL's older CancelQuery) name a query by the
FlightInfo GetFlightInfo answered, that is by its tickets, and arrive on their
own call: nothing ties them to the DoGet streaming that ticket but this table.
A cancel fires the Interrupt of each of the caller's running DoGets of the
ticket (an admin's: everyone's), and is remembered for a while so that a DoGet
of the ticket that starts later is refused CANCELLED too.

Tickets are kept as digests, never as sent: a ticket carries bound parameters
and may be megabytes long. Remembered cancels expire after `remember_s` and are
at most `max_remembered`, the oldest dropped first, so memory stays bounded
whatever clients send.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flightdeck.views import Interrupt

from .auth import Identity

__all__ = ["RunningQueries"]


@dataclass(frozen=True)
class _Run:
    owner: Identity
    interrupt: Interrupt


@dataclass(frozen=True)
class _Cancelled:
    by: Identity
    until: float  # time.monotonic() when it is forgotten


class RunningQueries:
    def __init__(self, *, remember_s: float = 300.0, max_remembered: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._runs: dict[bytes, dict[int, _Run]] = {}
        self._ids = itertools.count()
        self._cancelled: collections.OrderedDict[bytes, _Cancelled] = collections.OrderedDict()
        self._remember_s = remember_s
        self._max_remembered = max_remembered

    def start(
        self, ticket: bytes, owner: Identity, interrupt: Interrupt
    ) -> Callable[[], None] | None:
        """Record a DoGet of `ticket`, and the function that forgets it (call it once
        the stream ends); None when a cancel of the ticket applies to `owner`.

        The check and the record share the lock with `cancel`, so a cancel racing a
        start either refuses it here or finds it running and interrupts it."""
        key = _key(ticket)
        with self._lock:
            if self._cancelled_for(key, owner, time.monotonic()):
                return None
            run_id = next(self._ids)
            self._runs.setdefault(key, {})[run_id] = _Run(owner, interrupt)

        def finish() -> None:
            with self._lock:
                runs = self._runs.get(key, {})
                runs.pop(run_id, None)
                if not runs:
                    self._runs.pop(key, None)

        return finish

    def cancelled(self, ticket: bytes, caller: Identity) -> bool:
        """Whether a cancel that applies to `caller` named `ticket` (and is remembered)."""
        with self._lock:
            return self._cancelled_for(_key(ticket), caller, time.monotonic())

    def _cancelled_for(self, key: bytes, caller: Identity, now: float) -> bool:
        self._expire(now)
        mark = self._cancelled.get(key)
        return mark is not None and _applies(mark.by, caller)

    def cancel(self, ticket: bytes, caller: Identity) -> int:
        """Interrupt `caller`'s running DoGets of `ticket` (an admin: all of them), and
        refuse the ones that start later; the number interrupted now."""
        key = _key(ticket)
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            self._cancelled.pop(key, None)
            self._cancelled[key] = _Cancelled(caller, now + self._remember_s)
            while len(self._cancelled) > self._max_remembered:
                self._cancelled.popitem(last=False)
            chosen = [r for r in self._runs.get(key, {}).values() if _applies(caller, r.owner)]
        for run in chosen:  # outside the lock: a PostgreSQL cancel is a round trip
            run.interrupt.fire()
        return len(chosen)

    def running(self) -> int:
        with self._lock:
            return sum(len(runs) for runs in self._runs.values())

    def _expire(self, now: float) -> None:
        while self._cancelled:
            key, mark = next(iter(self._cancelled.items()))
            if mark.until > now:
                return
            del self._cancelled[key]


def _applies(canceller: Identity, owner: Identity) -> bool:
    return canceller.role == "admin" or canceller.name == owner.name


def _key(ticket: bytes) -> bytes:
    return hashlib.sha256(ticket).digest()
