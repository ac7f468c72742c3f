"""The work a group's members share: computed once per table object, within bounds."""

from __future__ import annotations

import pyarrow as pa
from flightdeck.flight_server.live.shared import _Memo


def _table(rows: int) -> pa.Table:
    return pa.table({"a": pa.array(range(rows), pa.int64())})


def test_a_value_is_computed_once_per_table_object():
    memo, calls = _Memo(8, 1 << 20), []
    table, twin = _table(3), _table(3)  # equal, but another object
    for anchor in (table, table, twin):
        memo.get(anchor, "rows", lambda a=anchor: calls.append(a) or a.num_rows)
    assert calls == [table, twin]


def test_entries_and_the_bytes_they_keep_alive_are_bounded():
    memo, calls = _Memo(8, 1000), []
    tables = [_table(50) for _ in range(5)]  # 400 bytes each: two fit
    for table in tables:
        memo.get(table, "n", lambda: calls.append(1))
    memo.get(tables[0], "n", lambda: calls.append(1))  # evicted: computed again
    memo.get(tables[-1], "n", lambda: calls.append(1))  # kept
    assert len(calls) == 6
    big = _table(1000)  # more than the bound alone: returned, never kept
    assert memo.get(big, "n", lambda: "value") == "value"
    assert all(entry[0] is not big for entry in memo._entries.values())
