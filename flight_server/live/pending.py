"""Per subscriber: updates not yet sent (newest per key, bounded), and what was sent.

The hub offers rows from its thread; the subscriber's DoExchange thread takes
them. Both sides work on whole Arrow tables, never row by row in Python.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from .key_join import join_on_keys
from .request import LIVE
from .shared import derived

__all__ = ["Pending", "Sent", "all_live_rows"]


def newest_per_key(table: pa.Table, keys: tuple[str, ...], version: str = "version") -> pa.Table:
    """One row per key: the one with the highest `version`."""
    if table.num_rows <= 1:
        return table
    ordered = table.sort_by(version)
    others = [c for c in table.column_names if c not in keys]
    last = ordered.group_by(list(keys), use_threads=False).aggregate([(c, "last") for c in others])
    return last.rename_columns([c.removesuffix("_last") for c in last.column_names]).select(
        table.column_names
    )


class Pending:
    """Bounded by `limit` distinct keys: past it the subscriber has fallen behind."""

    def __init__(self, keys: tuple[str, ...], limit: int) -> None:
        self._keys = keys
        self._limit = limit
        self._ready = threading.Condition()
        self._tables: list[pa.Table] = []
        self._rows = 0
        self.cursor = 0  # the newest update-log sequence the hub has offered
        self.behind = False
        self.closed = False  # the server is going away
        # Called (under the buffer's lock: it must not block) when rows arrive or the
        # server closes: how a thread or event loop serving many subscribers learns
        # which one to look at without a thread blocked in `take` per subscriber.
        self.on_ready: Callable[[], None] | None = None

    @property
    def rows(self) -> int:
        """Rows offered but not yet taken: how far this subscriber lags (for metrics)."""
        with self._ready:
            return self._rows

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify()
            self._wake()

    def offer(self, table: pa.Table | None, cursor: int) -> None:
        """From the hub: `table` (may be None: the cursor moved) as of update `cursor`.

        `table` may be shared with other subscribers: it is never modified here."""
        with self._ready:
            self.cursor = max(self.cursor, cursor)
            if table is None or not table.num_rows or self.behind:
                # No wake-up: the reader's poll or heartbeat picks the new cursor up, and
                # waking every subscriber for every update of another view is what cost most.
                return
            self._tables.append(table)
            self._rows += table.num_rows
            if self._rows > self._limit:
                self._coalesce()
                self.behind = self._rows > self._limit
            self._ready.notify()
            self._wake()

    def _wake(self) -> None:
        if self.on_ready is not None:
            self.on_ready()

    def take(self, timeout: float) -> tuple[pa.Table | None, int]:
        """The coalesced unsent rows (None if none arrived within `timeout`) and the cursor."""
        with self._ready:
            if not self._tables and not self.behind and not self.closed:
                self._ready.wait(timeout)
            if not self._tables:
                return None, self.cursor
            if len(self._tables) > 1:  # one table came newest-per-key from the hub already
                self._coalesce()
            table, self._tables, self._rows = self._tables[0], [], 0
            return table, self.cursor

    def _coalesce(self) -> None:
        table = newest_per_key(pa.concat_tables(self._tables), self._keys)
        self._tables, self._rows = [table], table.num_rows


class Sent:
    """What a subscriber holds: per key, the version (and `changes_on` values) last sent,
    and whether the row is held (`LIVE`) or was last sent as removed.

    Versions only grow, so live rows newer than everything held need no join: the
    common case once a subscriber is past its snapshot costs one `min`. Held rows are
    kept as parts and merged only when a join needs them, not on every update.
    `forget_removed`: drop removed keys when merging (a subscriber: the hub's group
    already drops rows older than a removal); `limit`: past this many held keys, `over`.
    """

    def __init__(
        self,
        keys: tuple[str, ...],
        changes_on: tuple[str, ...],
        *,
        forget_removed: bool = True,
        limit: int | None = None,
    ) -> None:
        self._keys = keys
        self._watched = changes_on
        self._forget_removed = forget_removed
        self._limit = limit
        self._parts: list[pa.Table] = []  # held rows; one key may repeat until merged
        self._part_rows = 0
        self._newest: int | None = None  # the highest version held
        self.over = False

    def fresh(
        self, table: pa.Table, *, unheld_removes: bool = False, unique: bool = False
    ) -> pa.Table:
        """Rows of `table` (with `LIVE`) to send, all of them then held: live rows newer
        than what is held (with changes_on: visibly changed); removed rows newer than a
        held live row, or (`unheld_removes`) than anything held, for a holder unknown here.
        `unique`: `table` has one row per key already (what Pending hands out)."""
        if not unique:
            table = newest_per_key(table, self._keys)
        if not table.num_rows:
            return table
        all_live = all_live_rows(table)
        if self._parts and (self._watched or not all_live or not self._all_newer(table)):
            table = self._unseen(table, unheld_removes)
        elif not all_live and not unheld_removes:  # nothing held: no removal concerns us
            table = table.filter(pc.field(LIVE))
        # Otherwise `table` itself goes out: the hub's table, shared with the group.
        self._hold(table)
        return table

    def hold_unique(self, table: pa.Table) -> None:
        """Hold `table` (with `LIVE`) as sent, its rows one per key already (a snapshot,
        read by the view's key): `fresh` without its per-key pass, which thousands of
        subscribers sharing one snapshot would otherwise each pay."""
        self._hold(table)

    def _all_newer(self, table: pa.Table) -> bool:
        lowest = derived(table, "lowest version", lambda: pc.min(table.column("version")).as_py())
        return lowest is not None and self._newest is not None and lowest > self._newest

    def _unseen(self, table: pa.Table, unheld_removes: bool) -> pa.Table:
        joined = join_on_keys(table, self._held(), self._keys, "left outer")
        held_version = joined.column("held_version")
        newer = pc.or_kleene(pc.is_null(held_version), pc.greater(joined["version"], held_version))
        newer = pc.fill_null(newer, True)
        shown = newer
        if self._watched:
            changed = pc.is_null(held_version)
            for c in self._watched:
                changed = pc.or_kleene(changed, pc.not_equal(joined[c], joined[f"held_{c}"]))
            shown = pc.and_kleene(newer, pc.fill_null(changed, True))
        held_live = pc.fill_null(joined.column("held_live"), unheld_removes)
        keep = pc.if_else(joined.column(LIVE), shown, pc.and_kleene(newer, held_live))
        return joined.filter(keep).select(table.column_names)

    def _held(self) -> pa.Table:
        if len(self._parts) > 1:
            merged = newest_per_key(pa.concat_tables(self._parts), self._keys, "held_version")
            if self._forget_removed:
                merged = merged.filter(pc.field("held_live"))
            self._parts, self._part_rows = [merged], merged.num_rows
        return self._parts[0]

    def _hold(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        kept, highest = derived(
            table, ("held", self._keys, self._watched), lambda: self._held_part(table)
        )
        self._parts.append(kept)
        self._part_rows += kept.num_rows
        if highest is not None:
            self._newest = highest if self._newest is None else max(self._newest, highest)
        if len(self._parts) > _MAX_PARTS or (self._limit and self._part_rows > self._limit):
            self._held()
        self.over = self._limit is not None and self._part_rows > self._limit

    def _held_part(self, table: pa.Table) -> tuple[pa.Table, int | None]:
        """What holding `table` keeps (renamed, so a join can tell it apart), and its
        highest version: the same for every member of a group, so computed once."""
        kept = table.select([*self._keys, "version", LIVE, *self._watched]).rename_columns(
            [*self._keys, "held_version", "held_live", *(f"held_{c}" for c in self._watched)]
        )
        return kept, pc.max(kept.column("held_version")).as_py()


def all_live_rows(table: pa.Table) -> bool:
    """Whether every row of `table` is in the selection (none to remove)."""
    return derived(table, "all live", lambda: pc.all(table.column(LIVE)).as_py() is not False)


_MAX_PARTS = 64  # held parts merged past this: bounds memory for keys updated many times
