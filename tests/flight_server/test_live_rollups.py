"""Every declared rollup is live: a DoExchange subscription to a rollup view gets
its snapshot, then the rows each commit changes (docs/rollups.md)."""

from __future__ import annotations

import contextlib

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck import Client, LiveTable
from flightdeck.ingest.rollup_install import install
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

from tests.flight_server.test_live import _leave, _messages, _put, _server, _subscribe
from tests.live.mirror import Mirror


@pytest.fixture
def location(store, nats_server, tmp_path):
    install(store, load_rollups([BUILTIN_DIR]))
    with _server(store, nats_server.url, tmp_path) as where:
        yield where


@pytest.fixture
def live(location):
    client = flight.connect(location)
    yield client
    client.close()


def test_a_rollup_view_streams_its_changed_rows(live):
    _put(live, ["/a", "/b"], session="s")
    writer, reader = _subscribe(live, subscribe="va_site_daily")
    first = _messages(reader, lambda meta, out: meta["type"] == "snapshot_end")
    (row,) = [r for meta, rows in first if meta["type"] == "snapshot" for r in rows]
    assert (row["views"], row["visits"]) == (2, 2)
    _put(live, ["/a", "/c", "/d"], session="t", minute=5)
    updates = _messages(
        reader, lambda meta, out: meta["type"] == "update" and out[-1][1][0]["views"] == 5
    )
    latest = updates[-1][1][0]
    assert (str(latest["date"]), latest["views"], latest["visits"]) == ("2024-01-15", 5, 5)
    _leave(writer, reader)


def test_a_subscription_to_an_unknown_view_lists_the_rollups(live):
    writer, reader = _subscribe(live, subscribe="va_nope")
    with pytest.raises(pa.ArrowInvalid, match="va_site_daily"):  # INVALID_ARGUMENT
        reader.read_chunk()
    with contextlib.suppress(pa.ArrowInvalid):  # the call already ended with the refusal
        writer.close()


def test_a_rollup_row_a_commit_empties_is_removed(live):
    """A late first view moves its visit to another entry page: the old page's row is
    deleted by that commit and reaches subscribers as a remove, so their table stays
    equal to a fresh query."""
    entry = next(r for r in load_rollups([BUILTIN_DIR]) if r.name == "entry_pages_daily")
    _put(live, ["/a"], session="s", minute=5)
    writer, reader = _subscribe(live, subscribe=entry.view, messages=2)
    mirror = Mirror(entry.key)
    mirror.read(reader, lambda m: m.kinds.get("snapshot_end"))
    assert [row["entry_page"] for row in mirror.rows.values()] == ["/a"]
    _put(live, ["/b"], session="s", minute=0)  # the same session, five minutes earlier
    mirror.read(reader, lambda m: m.kinds.get("remove"))
    assert [row["entry_page"] for row in mirror.rows.values()] == ["/b"]
    _leave(writer, reader)


def test_a_live_table_of_a_rollup_learns_its_keys_from_the_stream(live, location):
    """LiveTable needs no `keys` for a rollup: the stream's schema names them."""
    _put(live, ["/a", "/b", "/a"], session="s")
    with Client(location) as client, LiveTable(client, "va_pages_daily") as table:
        table.wait_ready(timeout=20)
        assert table.keys == ("date", "host", "path")
        _put(live, ["/c"], session="t", minute=5)
        expected = client.view("va_pages_daily").sort_by([("path", "ascending")])
        got = table.wait_for(lambda t: t.num_rows == expected.num_rows, timeout=20)
        assert got.equals(expected.select(got.column_names)), (got, expected)
