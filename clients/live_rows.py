"""The rows a LiveTable holds, kept by key from live messages (docs/live.md).

A snapshot is gathered aside and replaces the rows only at its `snapshot_end`,
so what readers see is always a whole state as of some cursor, never half a
snapshot (after a `resync` the old rows stay until the new ones are complete).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import pyarrow as pa

__all__ = ["Change", "LiveRows"]

_ROWS = ("update", "upsert")


class Change(NamedTuple):
    """What one message changed: keys (tuples of the key columns' values) of rows
    upserted and removed; `reset` when a whole new snapshot replaced the rows."""

    upserted: list[tuple]
    removed: list[tuple]
    cursor: int | None
    reset: bool = False


class LiveRows:
    """Rows by key; `apply` takes one message, `table()` gives them sorted.

    Sorted by the key columns, or for a top-N by its `order_by` (NULLs last, ties
    by the keys ascending, as the server ranks them). Thread-safe.
    """

    def __init__(self, keys: Sequence[str], top: dict[str, Any] | None = None) -> None:
        self._top = top
        self.keys = tuple(keys)
        self._order = _order(self.keys, top)
        self._lock = threading.Lock()
        self._rows: dict[tuple, dict] = {}
        self._incoming: dict[tuple, dict] | None = None  # a snapshot being gathered
        self._schema: pa.Schema | None = None
        self._table: pa.Table | None = None  # built on demand, dropped on change
        self.version = 0  # grows by one per change readers can see
        self.ready = False  # a first snapshot is complete

    def set_keys(self, keys: Sequence[str]) -> None:
        """The key columns, when they were not known at the start (a stream names them)."""
        with self._lock:
            self.keys = tuple(keys)
            self._order = _order(self.keys, self._top)

    def set_schema(self, schema: pa.Schema) -> None:
        with self._lock:
            if self._schema is None or not self._schema.equals(schema):
                self._schema = schema
                self._table = None

    def begin_snapshot(self) -> None:
        """Gather the rows that follow aside (a `resync`, or a new stream's snapshot)."""
        with self._lock:
            self._incoming = {}

    def apply(self, kind: str, rows: pa.Table | None, cursor: int | None) -> Change | None:
        """Apply one message; the change readers can now see, or None if none."""
        with self._lock:
            if kind == "snapshot" and rows is not None:
                if self._incoming is None:
                    self._incoming = {}
                self._incoming.update(self._keyed(rows))
                return None
            if kind == "snapshot_end":
                return self._end_snapshot(cursor)
            if kind in _ROWS and rows is not None:
                keyed = self._keyed(rows)
                self._rows.update(keyed)
                return self._changed(Change(list(keyed), [], cursor))
            if kind == "remove" and rows is not None:
                # A resumed stream replays every removal in its range: some were never held.
                gone = [key for key in self._keyed(rows) if self._rows.pop(key, None) is not None]
                return self._changed(Change([], gone, cursor)) if gone else None
            return None

    def abandon_snapshot(self) -> None:
        """Forget a snapshot cut short (the stream broke): the rows held stay as they were."""
        with self._lock:
            self._incoming = None

    @property
    def gathering(self) -> bool:
        return self._incoming is not None

    def table(self) -> pa.Table:
        """The rows as one Table, sorted; the same object until the next change."""
        with self._lock:
            if self._table is None:
                self._table = self._build()
            return self._table

    def _end_snapshot(self, cursor: int | None) -> Change:
        incoming, self._incoming = self._incoming or {}, None
        removed = [key for key in self._rows if key not in incoming]
        self._rows = incoming
        self.ready = True
        return self._changed(Change(list(incoming), removed, cursor, reset=True))

    def _changed(self, change: Change) -> Change:
        self._table = None
        self.version += 1
        return change

    def _keyed(self, rows: pa.Table) -> dict[tuple, dict]:
        return {tuple(row[k] for k in self.keys): row for row in rows.to_pylist()}

    def _build(self) -> pa.Table:
        if self._schema is None:
            return pa.table({})
        table = pa.Table.from_pylist(list(self._rows.values()), schema=self._schema)
        if not table.num_rows:
            return table
        try:
            return table.sort_by(self._order)
        except (TypeError, ValueError, pa.ArrowException):
            # pyarrow before NULL placement per sort key: one placement for all.
            return table.sort_by([o[:2] for o in self._order], null_placement="at_end")


def _order(keys: tuple[str, ...], top: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    by_key = [(k, "ascending", "at_end") for k in keys]
    if not top:
        return by_key
    direction = "descending" if top.get("desc") else "ascending"
    order = (top["order_by"], direction, "at_end")
    return [order, *(o for o in by_key if o[0] != top["order_by"])]
