"""One live subscription over DoExchange: snapshot, then deltas and heartbeats.

Order matters for exactness (docs/live.md): the subscriber registers with the
hub first, so every update after the hub's cursor is collected; the snapshot
read afterwards reflects at least everything up to that cursor; deltas then
apply only where their row `version` is newer than what was sent. The hub
hands identical subscriptions the same marked rows (see group.py); a row marked
out of the selection (or deleted) is sent as `remove` only to a subscriber that
holds it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
from flightdeck.views import Store

from .hub import LiveHub
from .pending import Sent, all_live_rows
from .request import LIVE, Subscription
from .shared import derived
from .top import TopN

__all__ = ["KEYS_METADATA", "stream_subscription"]

KEYS_METADATA = "flightdeck.keys"  # the stream schema's: the view's key columns, JSON

_POLL_S = 0.5  # how often a quiet subscription checks whether its client left


def stream_subscription(
    context: flight.ServerCallContext,
    store: Store,
    hub: LiveHub,
    subscription: Subscription,
    schema: pa.Schema,
    writer: flight.MetadataRecordBatchWriter,
    heartbeat_s: float,
    batch_rows: int,
) -> None:
    """Serve `subscription` on `writer`, `batch_rows` rows per record batch at most,
    until the client cancels or falls behind."""
    pending = hub.register(subscription)
    try:
        # The key columns ride in the stream's schema metadata: a client keeping a table
        # learns how to place rows of any view, rollups included (docs/live.md).
        keys = {KEYS_METADATA: json.dumps(list(subscription.keys))}
        out = pa.schema([schema.field(c) for c in subscription.columns], metadata=keys)
        writer.begin(out)
        sender = _Sender(writer, batch_rows, hub.lifetime)
        if subscription.top is not None:
            _serve_top(context, store, pending, subscription, sender, heartbeat_s)
            return
        sent = Sent(subscription.keys, subscription.changes_on, limit=hub.held_limit)
        cursor = pending.cursor
        missed = None
        if subscription.cursor is not None:
            missed = (
                None
                if subscription.lifetime not in (None, hub.lifetime)
                else hub.replay(subscription, subscription.cursor, cursor)
            )
            if missed is None:  # older than the log keeps: a fresh snapshot, never a partial replay
                sender.send("resync", cursor)
        if subscription.snapshot or (subscription.cursor is not None and missed is None):
            _snapshot(store, subscription, sent, sender, cursor)
        else:
            if subscription.changes_on and subscription.cursor is None:
                # "Changed" needs a before: the current rows, held but not sent. (A resume
                # sends every row changed after its cursor: the client's before is unknown.)
                _baseline(store, subscription, sent)
            if missed is not None and missed.num_rows:
                # The client's rows are unknown here: every removal may concern it.
                sender.changes(subscription, cursor, sent.fresh(missed, unheld_removes=True))
        # Every subscriber checks against what it holds: the hub's group already dropped
        # rows older than an earlier update, but only this subscriber knows which removals
        # concern it (and what its snapshot or resume gave it).
        _follow(context, pending, subscription, sender, heartbeat_s, sent.fresh, lambda: sent.over)
    finally:
        hub.unregister(pending)


def _snapshot(store, subscription, sent, sender: _Sender, cursor: int) -> None:
    for rows in _current_rows(store, subscription, sent):
        if sent.over:
            break  # _follow retires it: past the bound on held rows
        if rows.num_rows:
            sender.send("snapshot", cursor, rows.select(list(subscription.columns)))
    sender.send("snapshot_end", cursor)


def _baseline(store, subscription, sent) -> None:
    for _ in _current_rows(store, subscription, sent):
        pass


def _current_rows(store, subscription, sent):
    """The subscription's rows as the store has them now, each held in `sent`."""
    with store.read(subscription.snapshot_sql()) as reader:
        for batch in reader:
            rows = pa.Table.from_batches([batch])
            yield sent.fresh(rows.append_column(LIVE, pa.array([True] * rows.num_rows, pa.bool_())))


def _follow(
    context,
    pending,
    subscription: Subscription,
    sender: _Sender,
    heartbeat_s: float,
    changes: Callable[[pa.Table], pa.Table | None],
    over: Callable[[], bool] = lambda: False,
) -> None:
    """Send what `changes` makes of each update taken (marked rows), heartbeats when
    quiet, until the client leaves, falls behind, or `over()` (holds too many rows)."""
    quiet_since = sent_at = time.monotonic()
    interval = subscription.min_interval_ms / 1000
    while not context.is_cancelled():
        if interval and not _paused(context, sent_at + interval):
            return
        table, cursor = pending.take(_POLL_S)
        if pending.behind or pending.closed or over():
            why = "server shutting down" if pending.closed else "fell behind"
            if over():
                why = "holds more rows than --live-held-rows"
            sender.send("error", cursor, reason=f"{why}: resume from this cursor")
            return
        rows = changes(table) if table is not None else None
        if rows is not None and rows.num_rows:
            sender.changes(subscription, cursor, rows)
            quiet_since = sent_at = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat_s:
            sender.send("heartbeat", cursor)
            quiet_since = time.monotonic()


def _serve_top(context, store, pending, subscription, sender: _Sender, heartbeat_s: float) -> None:
    """A top-N (top.py): its rows now, then the differences an update may make. A resume
    gets `resync` and the top-N again: N rows at most, cheaper than replaying the log."""
    top = TopN(subscription)
    cursor = pending.cursor
    if subscription.cursor is not None:
        sender.send("resync", cursor)
    rows = top.read(store)
    if subscription.snapshot or subscription.cursor is not None:
        if rows.num_rows:
            sender.send("snapshot", cursor, rows.select(list(subscription.columns)))
        sender.send("snapshot_end", cursor)

    def changes(table: pa.Table) -> pa.Table | None:
        return top.refresh(store) if top.may_change(table) else None

    _follow(context, pending, subscription, sender, heartbeat_s, changes)


def _paused(context, until: float) -> bool:
    """Wait until `until` (min_interval_ms) while the hub coalesces updates per key in
    Pending; False if the client left meanwhile."""
    while (left := until - time.monotonic()) > 0:
        if context.is_cancelled():
            return False
        time.sleep(min(left, _POLL_S))
    return True


class _Sender:
    """Messages of the live protocol on one DoExchange writer."""

    def __init__(
        self, writer: flight.MetadataRecordBatchWriter, batch_rows: int, lifetime: str
    ) -> None:
        self._writer = writer
        self._batch_rows = batch_rows
        self._lifetime = lifetime  # on every message: a client resumes with it and its cursor

    def changes(self, subscription: Subscription, cursor: int, rows: pa.Table) -> None:
        """Marked rows as `update` (or `upsert`) and `remove` (keys only) messages."""
        kind = "upsert" if subscription.upsert else "update"
        if all_live_rows(rows):  # the common case: the group's table, sent as it is by every member
            self._send_batches(kind, cursor, self._shared_batches(rows, subscription.columns))
            return
        live = rows.column(LIVE)
        kept, gone = rows.filter(live), rows.filter(pc.invert(live))
        if kept.num_rows:
            self.send(kind, cursor, kept.select(list(subscription.columns)))
        if gone.num_rows:
            # One DoExchange stream has one schema: a remove carries the subscription's
            # columns, its keys filled and the rest null.
            keys = set(subscription.keys)
            columns = [
                c if c in keys else pa.nulls(gone.num_rows, gone.schema.field(c).type)
                for c in subscription.columns
            ]
            removed = pa.table(
                [gone.column(c) if isinstance(c, str) else c for c in columns],
                schema=gone.select(list(subscription.columns)).schema,
            )
            self.send("remove", cursor, removed)

    def send(self, kind: str, cursor: int, rows: pa.Table | None = None, **extra) -> None:
        if rows is None:
            meta = {"type": kind, "cursor": cursor, "lifetime": self._lifetime, **extra}
            self._writer.write_metadata(pa.py_buffer(json.dumps(meta).encode()))
            return
        self._send_batches(kind, cursor, rows.to_batches(max_chunksize=self._batch_rows), **extra)

    def _send_batches(self, kind: str, cursor: int, batches: list[pa.RecordBatch], **extra) -> None:
        meta = {"type": kind, "cursor": cursor, "lifetime": self._lifetime, **extra}
        metadata = pa.py_buffer(json.dumps(meta).encode())
        for batch in batches:
            if batch.num_rows:  # a table's empty chunks (a join's, a filter's) say nothing
                self._writer.write_with_metadata(batch, metadata)

    def _shared_batches(self, rows: pa.Table, columns: tuple[str, ...]) -> list[pa.RecordBatch]:
        """`rows`' columns as record batches: the same objects for every member of a group
        sending the same table, so a multiplexed stream encodes them once (shared.py)."""
        name = ("batches", tuple(columns), self._batch_rows)
        return derived(
            rows,
            name,
            lambda: rows.select(list(columns)).to_batches(max_chunksize=self._batch_rows),
        )
