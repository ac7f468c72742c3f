"""One live subscription over DoExchange: snapshot, then deltas and heartbeats.

Order matters for exactness (docs/live.md): the subscriber registers with the
hub first, so every update after the hub's cursor is collected; the snapshot
read afterwards reflects at least everything up to that cursor; deltas then
apply only where their row `version` is newer than what was sent. The hub
hands identical subscriptions the same filtered rows (see group.py).
"""

from __future__ import annotations

import json
import time

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.views import Store

from .hub import LiveHub
from .pending import Sent
from .request import Subscription

__all__ = ["stream_subscription"]

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
        out = pa.schema([schema.field(c) for c in subscription.columns])
        writer.begin(out)
        sender = _Sender(writer, batch_rows)
        sent = Sent(subscription.keys, subscription.changes_on)
        cursor = pending.cursor
        missed = None
        if subscription.cursor is not None:
            missed = hub.replay(subscription, subscription.cursor, cursor)
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
                rows = sent.fresh(missed)
                sender.send("update", cursor, rows.select(list(subscription.columns)))
        _follow(context, pending, subscription, sent, sender, heartbeat_s)
    finally:
        hub.unregister(pending)


def _snapshot(store, subscription, sent, sender: _Sender, cursor: int) -> None:
    for rows in _current_rows(store, subscription, sent):
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
            yield sent.fresh(pa.Table.from_batches([batch]))


def _follow(context, pending, subscription, sent, sender: _Sender, heartbeat_s: float) -> None:
    quiet_since = time.monotonic()
    while not context.is_cancelled():
        table, cursor = pending.take(_POLL_S)
        if pending.behind or pending.closed:
            why = "fell behind" if pending.behind else "server shutting down"
            sender.send("error", cursor, reason=f"{why}: resume from this cursor")
            return
        # The hub's group already dropped rows older than an earlier update: only what
        # this subscriber's snapshot or resume gave it is left to check, unless it
        # watches values (changes_on), which differ per subscriber.
        rows = sent.fresh(table, hold=bool(subscription.changes_on)) if table is not None else None
        if rows is not None and rows.num_rows:
            sender.send("update", cursor, rows.select(list(subscription.columns)))
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat_s:
            sender.send("heartbeat", cursor)
            quiet_since = time.monotonic()


class _Sender:
    """Messages of the live protocol on one DoExchange writer."""

    def __init__(self, writer: flight.MetadataRecordBatchWriter, batch_rows: int) -> None:
        self._writer = writer
        self._batch_rows = batch_rows

    def send(self, kind: str, cursor: int, rows: pa.Table | None = None, **extra) -> None:
        metadata = pa.py_buffer(json.dumps({"type": kind, "cursor": cursor, **extra}).encode())
        if rows is None:
            self._writer.write_metadata(metadata)
            return
        for batch in rows.to_batches(max_chunksize=self._batch_rows):
            self._writer.write_with_metadata(batch, metadata)
