"""Read replicas: PostgreSQL streaming standbys that answer client queries.

A replica serves only while it is up and close behind the primary. Lag is
measured against the primary's own WAL position, sampled every `interval`:
a replica that has replayed up to LSN R lags by how long ago the primary
first wrote past R. Comparing on the replica alone (received vs replayed WAL,
or the last replayed commit's time) misreads a replica whose WAL receiver
fell behind or an idle primary; the primary's samples read both right.

Queries go round robin over the replicas that pass; with none, the primary
answers. Reads that must see the newest commit (live snapshots, flightdeck's
own reads, ingest) never come here: the store keeps them on the primary.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = ["LagClock", "Replica", "Replicas", "parse_lsn", "replica_login"]

log = logging.getLogger("flightdeck.replicas")

# Read on the replica: where it has replayed to; once promoted, where it writes.
REPLAYED_SQL = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text "
    "ELSE pg_current_wal_lsn()::text END AS lsn"
)
PRIMARY_SQL = "SELECT pg_current_wal_lsn()::text AS lsn"
_CONNECT_TIMEOUT_S = "5"  # a replica host that went away must not hold the check long


def parse_lsn(text: str) -> int:
    """PostgreSQL's `X/Y` WAL position as one number."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def replica_login(reader_url: str, replica_url: str) -> str:
    """The reader role's login (user, password, session options) on the replica's
    host, port and database. The replica is a copy of the primary, so the role and
    its password are there too; `target_session_attrs` is the replica's own (the
    primary's read-write would refuse a standby)."""
    reader, replica = urlsplit(reader_url), urlsplit(replica_url)
    login = reader.netloc.rpartition("@")[0]
    host = replica.netloc.rpartition("@")[2]
    params = [
        (k, v)
        for k, v in parse_qsl(reader.query, keep_blank_values=True)
        if k not in ("target_session_attrs", "host", "port", "hostaddr", "dbname")
    ]
    own = [
        (k, v)
        for k, v in parse_qsl(replica.query, keep_blank_values=True)
        if k not in ("user", "password", "passfile", "options")
    ]
    params = [(k, v) for k, v in params if k not in dict(own)] + own
    if "connect_timeout" not in dict(params):
        params.append(("connect_timeout", _CONNECT_TIMEOUT_S))
    path = replica.path if replica.path not in ("", "/") else reader.path
    netloc = f"{login}@{host}" if login else host
    return urlunsplit(
        reader._replace(netloc=netloc, path=path, query=urlencode(params, quote_via=quote))
    )


class LagClock:
    """When the primary was at which WAL position, over the last `window_s` seconds."""

    def __init__(self, window_s: float, interval_s: float) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=int(window_s / interval_s) + 2)
        self._lock = threading.Lock()

    def note(self, lsn: int, at: float | None = None) -> None:
        with self._lock:
            if not self._samples or self._samples[-1][1] != lsn:
                self._samples.append((time.monotonic() if at is None else at, lsn))

    def lag(self, replayed: int, now: float | None = None) -> float | None:
        """Seconds since the primary first wrote past `replayed`: 0 when the replica
        has all the primary had at the last sample; None before any sample."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if not self._samples:
                return None
            for at, lsn in self._samples:
                if lsn > replayed:
                    return now - at
            return 0.0


class Replica:
    """One replica: its pool and whether it may serve now."""

    def __init__(self, url: str, pool) -> None:
        self.url = url
        self.pool = pool
        self.serving = False
        self.reason = "not checked yet"


class Replicas:
    """The replicas, checked in a background thread; `pick()` chooses one that serves."""

    def __init__(
        self,
        replicas: list[Replica],
        primary_lsn: Callable[[], int],
        replica_lsn: Callable[[Replica], int],
        max_lag_s: float,
        interval_s: float = 0.5,
    ) -> None:
        self._replicas = replicas
        self._primary_lsn = primary_lsn
        self._replica_lsn = replica_lsn
        self._max_lag_s = max_lag_s
        self._interval_s = interval_s
        self._clock = LagClock(max_lag_s + 2 * interval_s, interval_s)
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def pick(self) -> Replica | None:
        """The next serving replica, round robin; None: the primary must answer."""
        self._ensure_started()
        serving = [r for r in self._replicas if r.serving]
        if not serving:
            return None
        return serving[next(self._turn) % len(serving)]

    def failed(self, replica: Replica, reason: str) -> None:
        """A query could not reach `replica`: skip it until the next check finds it back."""
        replica.serving = False
        replica.reason = reason

    def check(self) -> None:
        """Sample the primary, then decide for each replica whether it serves."""
        with contextlib.suppress(Exception):  # primary away: judge by older samples
            self._clock.note(self._primary_lsn())
        for replica in self._replicas:
            self._judge(replica)

    def _judge(self, replica: Replica) -> None:
        try:
            replayed = self._replica_lsn(replica)
        except Exception as exc:  # down, refusing logins, restarting
            self._set(replica, False, f"unreachable: {exc}")
            return
        lag = self._clock.lag(replayed)
        if lag is None:
            self._set(replica, False, "the primary's position is not known yet")
        elif lag > self._max_lag_s:
            self._set(replica, False, f"{lag:.1f} s behind the primary")
        else:
            self._set(replica, True, "serving")

    def _set(self, replica: Replica, serving: bool, reason: str) -> None:
        if serving != replica.serving:
            log.warning(
                "read replica %s url=%s reason=%s",
                "serving" if serving else "skipped",
                _without_login(replica.url),
                reason,
            )
        replica.serving, replica.reason = serving, reason

    def _ensure_started(self) -> None:
        with self._start:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="flightdeck-replicas", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self._interval_s)

    def close(self) -> None:
        self._stop.set()
        with self._start:
            thread = self._thread
        if thread is not None:
            thread.join(30)
        for replica in self._replicas:
            replica.pool.close()


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=""))
