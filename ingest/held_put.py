"""A put held in Arrow and appended by the store's bulk path (COPY on PostgreSQL).

Staging a put into a temp table and appending with `INSERT … SELECT … ON
CONFLICT DO NOTHING` wrote every row twice, the second time row by row (a heap
insert and a WAL record each). A put that fits `HELD_BYTES` of Arrow is instead
kept in memory as its validated batches arrive, then appended beside other held
puts (ingest/turns.py; a repeat another put sends meanwhile is refused by the key):

- repeats within the put are dropped in Arrow (first sent of each event_id wins:
  the least `flightdeck_seq` per id, a hash aggregate, no per-row Python);
- the ids the store holds are found by a join of the put's ids (one bulk ingest
  into a temp table) with the primary key, and dropped;
- what is left is bulk-ingested into tb_pageview_event, and its
  `(session_id, page_url, recorded_at)` into `flightdeck_new` for the aggregates.

A put over the bound, or one whose bulk append the store refuses as data
(`BackendError.data_refused`), goes the staged way (pipeline.py, append.py), where
StoreRefusals names the row refused; the refused try is rolled back first.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from . import retention
from .append import NEW
from .derived import STORED_SCHEMA

__all__ = ["HELD_BYTES", "SEQ", "Held", "HoldBudget", "append_held", "hold"]

# The most Arrow a put may hold in memory (the put's validated columns); over it,
# the put is staged in the store.
HELD_BYTES = 256 * 1024 * 1024
SEQ = "flightdeck_seq"  # a row's place in the put
_IDS = "flightdeck_put_ids"
# What aggregates.recompute reads (the first three) and the rollups (ingest/rollups.py).
_RETURNED = ["session_id", "page_url", "recorded_at", "event_id", "user_id"]


class HoldBudget:
    """The bytes all puts of one process may hold at once. Each put is bounded by
    `HELD_BYTES` too, but puts that arrive together each hold theirs while they wait
    for the writer's turn: a put that cannot reserve its next batch here is staged
    in the store instead, as a put over the bound is."""

    def __init__(self, limit: int) -> None:
        self._left = limit
        self._lock = threading.Lock()

    @property
    def left(self) -> int:
        return self._left

    def take(self, nbytes: int) -> bool:
        with self._lock:
            if nbytes > self._left:
                return False
            self._left -= nbytes
            return True

    def give(self, nbytes: int) -> None:
        with self._lock:
            self._left += nbytes


@dataclass
class Held:
    """A put's validated batches (each with `flightdeck_seq`), read up to a bound."""

    batches: list[pa.RecordBatch]
    rest: Iterator[pa.RecordBatch] | None  # None: the whole put is held
    reserved: int = 0  # bytes taken from the HoldBudget, to give back when the put ends

    @property
    def whole(self) -> bool:
        return self.rest is None

    def table(self) -> pa.Table:
        schema = STORED_SCHEMA.append(pa.field(SEQ, pa.int64()))
        return pa.Table.from_batches(self.batches, schema=schema)


def hold(batches: Iterator[pa.RecordBatch], limit: int, budget: HoldBudget) -> Held:
    """Read `batches` until they pass `limit` bytes or `budget` runs out; the rest stays
    unread in `rest`. The batch that stopped it is kept, unreserved."""
    held: list[pa.RecordBatch] = []
    size = 0
    try:
        for batch in batches:
            held.append(batch)
            if size + batch.nbytes > limit or not budget.take(batch.nbytes):
                return Held(held, batches, size)
            size += batch.nbytes
    except BaseException:  # a bad batch ends the put: what it reserved is free again
        budget.give(size)
        raise
    return Held(held, None, size)


def append_held(cursor, put: pa.Table, expired: frozenset[dt.date]) -> int:
    """Append the put's new events; how many, each also in `flightdeck_new`.

    Beside other held puts (turns.join_appends), in the put's transaction: a refusal
    leaves it to be rolled back."""
    _recheck_retention(cursor, put, expired)
    new = _not_stored(cursor, _first_sends(put))
    if new.num_rows == 0:
        return 0
    cursor.adbc_ingest("tb_pageview_event", new.drop_columns([SEQ]), mode="append")
    cursor.adbc_ingest(NEW, new.select(_RETURNED), mode="create", temporary=True)
    return new.num_rows


def _recheck_retention(cursor, put: pa.Table, seen: frozenset[dt.date]) -> None:
    # Retention may have expired a day since the batches were checked against `seen`.
    days = pc.unique(put.column("recorded_at").cast(pa.date32())).to_pylist()
    retention.recheck_days(cursor, frozenset(days), seen)


def _first_sends(put: pa.Table) -> pa.Table:
    """Each event_id's first row in the put (the least `flightdeck_seq`)."""
    firsts = put.group_by("event_id", use_threads=False).aggregate([(SEQ, "min")])
    if firsts.num_rows == put.num_rows:
        return put
    return put.filter(pc.is_in(put.column(SEQ), value_set=firsts.column(f"{SEQ}_min")))


def _not_stored(cursor, put: pa.Table) -> pa.Table:
    """The rows of `put` whose event_id the store does not hold."""
    cursor.adbc_ingest(_IDS, put.select(["event_id"]), mode="create", temporary=True)
    cursor.execute(f"ANALYZE {_IDS}")  # temp tables lack statistics: a join plan needs them
    cursor.execute(
        f"SELECT e.event_id FROM tb_pageview_event e JOIN {_IDS} i ON e.event_id = i.event_id"
    )
    stored = cursor.fetch_arrow_table().column("event_id")
    cursor.execute(f"DROP TABLE {_IDS}")
    if len(stored) == 0:
        return put
    return put.filter(pc.invert(pc.is_in(put.column("event_id"), value_set=stored)))
