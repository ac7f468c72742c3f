"""A rollup row whose dimension is missing has NULL in its key (`host` of a page sent
as a path): NULL matches NULL when the server tells which rows a subscriber holds, so
a top-N keeps such members and a row leaving a filter is removed (both backends)."""

from __future__ import annotations

import pyarrow.flight as flight
import pytest
from flightdeck import Client
from flightdeck.ingest.rollup_install import install
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

from tests.flight_server.test_live import _leave, _put, _server, _subscribe
from tests.live.mirror import Mirror

PAGES = "va_pages_daily"
KEYS = ("date", "host", "path")
COLUMNS = [*KEYS, "views"]


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


def _query(location: str, sql: str) -> list[tuple]:
    with Client(location) as client:
        rows = client.query(sql).to_pylist()
    return sorted(tuple(r[c] for c in COLUMNS) for r in rows)


def test_a_top_n_keeps_members_whose_key_holds_a_null(live, location):
    _put(live, ["/a"] * 5 + ["/b"] * 4 + ["/c"] * 3 + ["/d"], session="s")
    top = {"order_by": "views", "desc": True, "limit": 3}
    writer, reader = _subscribe(live, subscribe=PAGES, top=top, messages=2)
    mirror = Mirror(KEYS)
    mirror.read(reader, lambda m: m.kinds.get("snapshot_end"))
    assert {k[2] for k in mirror.rows} == {"/a", "/b", "/c"}
    assert all(k[1] is None for k in mirror.rows)  # the key's host is NULL
    _put(live, ["/a", "/b", "/c"] * 2, session="t", minute=5)  # every member changes
    sql = f"SELECT * FROM {PAGES} ORDER BY views DESC, path LIMIT 3"
    expected = _query(location, sql)
    assert [r[3] for r in expected] == [7, 6, 5]
    mirror.read(reader, lambda m: m.table(COLUMNS) == expected)
    _settle(mirror, reader)
    assert not mirror.kinds.get("remove"), "a member still in the top-N was removed"
    assert mirror.table(COLUMNS) == expected
    _leave(writer, reader)


def test_a_row_whose_key_holds_a_null_leaving_a_filter_is_removed(live, location):
    _put(live, ["/a", "/a", "/b"], session="s")
    writer, reader = _subscribe(live, subscribe=PAGES, where={"views": {"<": 3}}, messages=2)
    mirror = Mirror(KEYS)
    mirror.read(reader, lambda m: m.kinds.get("snapshot_end"))
    assert {k[2] for k in mirror.rows} == {"/a", "/b"}
    _put(live, ["/a", "/b"], session="t", minute=5)  # /a reaches 3 and leaves; /b stays
    expected = _query(location, f"SELECT * FROM {PAGES} WHERE views < 3")
    assert [r[2] for r in expected] == ["/b"]
    mirror.read(reader, lambda m: m.table(COLUMNS) == expected)
    _settle(mirror, reader)
    assert mirror.table(COLUMNS) == expected
    _leave(writer, reader)


def _settle(mirror: Mirror, reader) -> None:
    """Read on until the next heartbeat: what the update sent after the rows it
    matched (a wrong remove came right after its upsert) is applied too."""
    beats = mirror.kinds.get("heartbeat", 0)
    mirror.read(reader, lambda m: m.kinds.get("heartbeat", 0) > beats)
