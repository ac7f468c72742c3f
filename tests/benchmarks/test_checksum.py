"""The read benchmark's content checksum: order- and chunk-independent, value-sensitive."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.checksum import checksum
from benchmarks.data import events


def _table() -> pa.Table:
    return events(1_000)


def test_same_rows_in_another_order_and_chunking_give_the_same_sums():
    table = _table()
    shuffled = table.take(pa.array(list(range(999, -1, -1))))
    rechunked = pa.concat_tables(
        [shuffled.slice(0, 7), shuffled.slice(7, 500), shuffled.slice(507)]
    )
    assert checksum(rechunked) == checksum(table)


def test_one_changed_character_changes_the_sum():
    table = _table()
    ids = table.column("event_id").to_pylist()
    ids[3] = ids[3][:-1] + "x"
    changed = table.set_column(0, "event_id", pa.array(ids))
    assert checksum(changed)["event_id"] != checksum(table)["event_id"]


def test_bytes_swapped_between_rows_change_the_sum():
    """ "ab", "cd" and "cb", "ad": the same bytes at the same positions, other values."""
    table = _table()
    ids = table.column("event_id").to_pylist()
    ids[0], ids[1] = "ab", "cd"
    before = checksum(table.set_column(0, "event_id", pa.array(ids)))
    ids[0], ids[1] = "cb", "ad"
    after = checksum(table.set_column(0, "event_id", pa.array(ids)))
    assert before["event_id"] != after["event_id"]


def test_a_dropped_row_and_a_doubled_one_change_the_sum():
    table = _table()
    indices = list(range(1_000))
    indices[10] = 11
    assert checksum(table.take(pa.array(indices))) != checksum(table)


def test_a_null_differs_from_an_empty_string():
    empty = pa.table({**_table().to_pydict()})
    referrer = empty.column("referrer").to_pylist()
    referrer[0] = ""
    with_empty = empty.set_column(5, "referrer", pa.array(referrer, pa.string()))
    referrer[0] = None
    with_null = empty.set_column(5, "referrer", pa.array(referrer, pa.string()))
    assert checksum(with_empty)["referrer"] != checksum(with_null)["referrer"]


def test_a_pandas_frame_of_the_same_rows_gives_the_same_sums():
    table = _table()
    frame = table.to_pandas()
    assert checksum(frame) == checksum(table)


def test_other_spellings_of_the_same_types_give_the_same_sums():
    table = _table()
    other = table.set_column(
        0, "event_id", pc.cast(table.column("event_id"), pa.large_string())
    ).set_column(
        3,
        "recorded_at",
        pc.cast(table.column("recorded_at"), pa.timestamp("ns", "UTC")),
    )
    assert checksum(other) == checksum(table)
    naive = table.set_column(
        3, "recorded_at", pc.cast(table.column("recorded_at"), pa.timestamp("us"))
    )
    assert checksum(naive) == checksum(table)
