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


# A rollup row whose dimension is missing has NULL in its key (`host` of a page sent
# as a path): NULL matches NULL when the server tells which rows a subscriber holds.

PAGES = "va_pages_daily"
PAGE_KEYS = ("date", "host", "path")
PAGE_COLUMNS = [*PAGE_KEYS, "views"]


def _pages(location: str, sql: str) -> list[tuple]:
    with Client(location) as client:
        rows = client.query(sql).to_pylist()
    return sorted(tuple(r[c] for c in PAGE_COLUMNS) for r in rows)


def test_a_top_n_keeps_members_whose_key_holds_a_null(live, location):
    _put(live, ["/a"] * 5 + ["/b"] * 4 + ["/c"] * 3 + ["/d"], session="s")
    top = {"order_by": "views", "desc": True, "limit": 3}
    writer, reader = _subscribe(live, subscribe=PAGES, top=top, messages=2)
    mirror = Mirror(PAGE_KEYS)
    mirror.read(reader, lambda m: m.kinds.get("snapshot_end"))
    assert {k[2] for k in mirror.rows} == {"/a", "/b", "/c"}
    assert all(k[1] is None for k in mirror.rows)  # the key's host is NULL
    _put(live, ["/a", "/b", "/c"] * 2, session="t", minute=5)  # every member changes
    sql = f"SELECT * FROM {PAGES} ORDER BY views DESC, path LIMIT 3"
    expected = _pages(location, sql)
    assert [r[3] for r in expected] == [7, 6, 5]
    mirror.read(reader, lambda m: m.table(PAGE_COLUMNS) == expected)
    _settle(mirror, reader)
    assert not mirror.kinds.get("remove"), "a member still in the top-N was removed"
    assert mirror.table(PAGE_COLUMNS) == expected
    _leave(writer, reader)


def test_a_row_whose_key_holds_a_null_leaving_a_filter_is_removed(live, location):
    _put(live, ["/a", "/a", "/b"], session="s")
    writer, reader = _subscribe(live, subscribe=PAGES, where={"views": {"<": 3}}, messages=2)
    mirror = Mirror(PAGE_KEYS)
    mirror.read(reader, lambda m: m.kinds.get("snapshot_end"))
    assert {k[2] for k in mirror.rows} == {"/a", "/b"}
    _put(live, ["/a", "/b"], session="t", minute=5)  # /a reaches 3 and leaves; /b stays
    expected = _pages(location, f"SELECT * FROM {PAGES} WHERE views < 3")
    assert [r[2] for r in expected] == ["/b"]
    mirror.read(reader, lambda m: m.table(PAGE_COLUMNS) == expected)
    _settle(mirror, reader)
    assert mirror.table(PAGE_COLUMNS) == expected
    _leave(writer, reader)


def _settle(mirror: Mirror, reader) -> None:
    """Read on until the next heartbeat: what the update sent after the rows it
    matched (a wrong remove came right after its upsert) is applied too."""
    beats = mirror.kinds.get("heartbeat", 0)
    mirror.read(reader, lambda m: m.kinds.get("heartbeat", 0) > beats)
