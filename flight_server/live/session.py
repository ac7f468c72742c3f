"""One live subscription served step by step, so that one thread (or event loop) serves many.

exchange.py serves one subscription on its own DoExchange thread, blocked in
`Pending.take`. Ten thousand of those are ten thousand threads. A session does
the same work in `step()`, which never waits: whoever drives it (a multiplexed
stream's writer thread, the HTTP face's event loop) calls it when the hub says
rows arrived (`Pending.on_ready`) and now and then for heartbeats. The blocking
start (the snapshot read, a resume's replay, a top-N's read) runs on
SnapshotReads' few threads; identical snapshots share one read there.

The exactness rules are exchange.py's, in the same order: register with the
hub first, then read; deltas only where newer than what was sent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future

import pyarrow as pa
from flightdeck.views import Store

from .exchange import _baseline, _Sender, _snapshot
from .hub import LiveHub
from .pending import Sent
from .request import Subscription
from .snapshots import SnapshotReads
from .top import TopN

__all__ = ["LiveSession"]


class LiveSession:
    """`writer` takes the messages (a Flight MetadataRecordBatchWriter's `write_metadata`
    and `write_with_metadata`); it is written from `step()` and, while the session
    starts, from a SnapshotReads thread, never from both at once."""

    def __init__(
        self,
        store: Store,
        hub: LiveHub,
        snapshots: SnapshotReads,
        subscription: Subscription,
        writer,
        *,
        heartbeat_s: float,
        batch_rows: int,
        on_ready: Callable[[], None],
    ) -> None:
        self.subscription = subscription
        self._store = store
        self._hub = hub
        self._heartbeat_s = heartbeat_s
        self._interval = subscription.min_interval_ms / 1000
        self._sender = _Sender(writer, batch_rows, hub.lifetime)
        self._sent = Sent(subscription.keys, subscription.changes_on, limit=hub.held_limit)
        self._top = TopN(subscription) if subscription.top is not None else None
        self.pending = hub.register(subscription)  # first: see docs/live.md
        self.pending.on_ready = on_ready
        self._cursor = self.pending.cursor
        self._started: Future | None = self._start(snapshots)
        if self._started is not None:
            self._started.add_done_callback(lambda _: on_ready())
        self._quiet_since = self._sent_at = time.monotonic()
        self.finished = False
        on_ready()  # rows offered before on_ready was set wait for no poll

    @property
    def blocking(self) -> bool:
        """Whether `step()` may read the store (a top-N's refresh): run it off an event loop."""
        return self._top is not None

    def close(self) -> None:
        self.finished = True
        self._hub.unregister(self.pending)

    def step(self) -> bool:
        """Send what is due without waiting; False once the subscription has ended
        (an `error` with the cursor to resume from was sent)."""
        if self.finished:
            return False
        try:
            if self._started is not None:
                if not self._started.done():
                    return True
                started, self._started = self._started, None
                shared = started.result()  # a failed read raises here: sent as error
                if shared is not None:
                    self._from_snapshot(shared)
            return self._follow()
        except Exception as exc:  # the subscription's own failure ends it alone
            with contextlib.suppress(Exception):
                self._sender.send("error", self.pending.cursor, reason=str(exc))
            self.finished = True
            return False

    def _start(self, snapshots: SnapshotReads) -> Future | None:
        """A future of the shared snapshot rows, of a blocking start, or None (nothing to read)."""
        s = self.subscription
        if self._top is not None or s.cursor is not None:
            return snapshots.submit(self._blocking_start)
        if s.snapshot or s.changes_on:
            return snapshots.rows(s.snapshot_sql())
        return None

    def _from_snapshot(self, rows: pa.Table) -> None:
        self._sent.hold_unique(rows)
        if not self.subscription.snapshot:
            return  # a baseline for changes_on: held, not sent
        if self._sent.over:
            return  # _follow retires it: past the bound on held rows
        if rows.num_rows:
            columns = list(self.subscription.columns)
            self._sender.send("snapshot", self._cursor, rows.select(columns))
        self._sender.send("snapshot_end", self._cursor)

    def _blocking_start(self) -> None:
        """exchange.stream_subscription's start for a resume or a top-N (rare, blocking)."""
        s, cursor, sender = self.subscription, self._cursor, self._sender
        if self._top is not None:
            if s.cursor is not None:
                sender.send("resync", cursor)
            rows = self._top.read(self._store)
            if s.snapshot or s.cursor is not None:
                if rows.num_rows:
                    sender.send("snapshot", cursor, rows.select(list(s.columns)))
                sender.send("snapshot_end", cursor)
            return
        missed = None
        if s.lifetime in (None, self._hub.lifetime):
            missed = self._hub.replay(s, s.cursor, cursor)
        if missed is None:
            sender.send("resync", cursor)
        if s.snapshot or missed is None:
            _snapshot(self._store, s, self._sent, sender, cursor)
            return
        if s.changes_on:
            _baseline(self._store, s, self._sent)
        if missed.num_rows:
            sender.changes(s, cursor, self._sent.fresh(missed, unheld_removes=True))

    def _follow(self) -> bool:
        now = time.monotonic()
        if self._interval and now < self._sent_at + self._interval:
            return True  # Pending keeps coalescing per key meanwhile
        table, cursor = self.pending.take(0)
        pending = self.pending
        if pending.behind or pending.closed or self._sent.over:
            why = "server shutting down" if pending.closed else "fell behind"
            if self._sent.over:
                why = "holds more rows than --live-held-rows"
            self._sender.send("error", cursor, reason=f"{why}: resume from this cursor")
            self.finished = True
            return False
        rows = self._changes(table) if table is not None else None
        if rows is not None and rows.num_rows:
            self._sender.changes(self.subscription, cursor, rows)
            self._quiet_since = self._sent_at = now
        elif now - self._quiet_since >= self._heartbeat_s:
            self._sender.send("heartbeat", cursor)
            self._quiet_since = now
        return True

    def _changes(self, table: pa.Table) -> pa.Table | None:
        if self._top is None:
            return self._sent.fresh(table, unique=True)  # Pending hands out one row per key
        return self._top.refresh(self._store) if self._top.may_change(table) else None
