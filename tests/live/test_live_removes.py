"""Rows leaving a live subscription arrive as `remove`: a row whose non-key column stops
matching `where`, and a row a reaggregate deletes; upserts, coalescing (both backends)."""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest
from flightdeck import Client
from flightdeck.ingest import pipeline

from tests.flight_server.test_live import _leave, _put, _subscribe
from tests.live.mirror import Mirror
from tests.services import wait_for

# Random puts on a live server: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

DAILY = "va_pageview_aggregate"
KEYS = ("page_url", "date")
COLUMNS = ["page_url", "date", "view_count"]


def _query(location: str, where: dict) -> list[tuple]:
    with Client(location) as client:
        table = client.view(DAILY, where=where, columns=COLUMNS)
    return sorted(tuple(r[c] for c in COLUMNS) for r in table.to_pylist())


def _snapshot_done(mirror: Mirror) -> bool:
    return mirror.kinds.get("snapshot_end", 0) > 0


def test_a_row_leaving_a_filter_on_a_non_key_column_is_removed(live):
    _put(live, ["/x", "/x", "/y"])
    where = {"view_count": {">=": 2}}
    writer, reader = _subscribe(live, subscribe=DAILY, where=where, messages=2)
    mirror = Mirror(KEYS)
    mirror.read(reader, _snapshot_done)
    assert [r[0] for r in mirror.table(COLUMNS)] == ["/x"]
    _put(live, ["/y"], session="t")  # /y enters: 2 views
    mirror.read(reader, lambda m: len(m.rows) == 2)
    assert mirror.kinds.get("upsert") and not mirror.kinds.get("update")
    writer2, reader2 = _subscribe(live, subscribe=DAILY, where={"view_count": {"<": 3}})
    narrow = Mirror(KEYS)
    narrow.read(reader2, _snapshot_done)
    assert sorted(k[0] for k in narrow.rows) == ["/x", "/y"]
    _put(live, ["/x"], session="u")  # /x: 3 views, leaves `< 3`
    narrow.read(reader2, lambda m: m.kinds.get("remove"))
    assert [k[0] for k in narrow.rows] == ["/y"]
    _leave(writer, reader)
    _leave(writer2, reader2)


def test_a_row_reaggregate_deletes_is_removed(live, store):
    _put(live, ["/x", "/ghost"])
    writer, reader = _subscribe(live, subscribe=DAILY)  # an old request: no "messages"
    mirror = Mirror(KEYS)
    mirror.read(reader, _snapshot_done)
    assert sorted(k[0] for k in mirror.rows) == ["/ghost", "/x"]
    with store.write() as conn, conn.cursor() as cursor:  # its events lost: the row is wrong
        cursor.execute("DELETE FROM tb_pageview_event WHERE page_url = '/ghost'")
        conn.commit()
    repair = pipeline.reaggregate(store, None)
    assert repair.removed >= 1
    mirror.read(reader, lambda m: m.kinds.get("remove"))
    assert [k[0] for k in mirror.rows] == ["/x"]
    assert wait_for(lambda: _removals(store) == 0)  # forgotten once published
    _leave(writer, reader)


def _removals(store) -> int:
    with store.read_internal("SELECT count(*) AS n FROM tb_live_removal") as reader:
        return reader.read_all().column(0)[0].as_py()


def test_min_interval_coalesces_updates_per_key(live):
    _put(live, ["/x"])
    writer, reader = _subscribe(live, subscribe=DAILY, min_interval_ms=1500, messages=2)
    mirror = Mirror(KEYS)
    mirror.read(reader, _snapshot_done)
    arrivals: list[float] = []

    # The puts run beside the reading: read only after them, upserts that arrived
    # an interval apart would sit in the stream and be timed together.
    def put_six() -> None:
        for i in range(6):
            _put(live, ["/x"], session=f"c{i}-")

    putter = threading.Thread(target=put_six)
    putter.start()

    def done(m: Mirror) -> bool:
        if m.kinds.get("upsert", 0) > len(arrivals):
            arrivals.append(time.monotonic())
        return any(r["view_count"] == 7 for r in m.rows.values())

    mirror.read(reader, done)
    putter.join()
    assert len(arrivals) < 6  # six commits, fewer messages: coalesced by key
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(g >= 1.3 for g in gaps), gaps  # at most once per interval (some slack)
    _leave(writer, reader)


def test_a_mirror_of_a_filtered_subscription_equals_a_fresh_query_after_random_puts(live, location):
    rng = random.Random(20)
    pages = [f"/p{i}" for i in range(6)]
    where = {"view_count": {">=": 3, "<": 7}}  # rows enter, then leave as they grow
    writer, reader = _subscribe(live, subscribe=DAILY, where=where, messages=2)
    mirror = Mirror(KEYS)
    mirror.read(reader, _snapshot_done)
    for i in range(12):
        _put(live, rng.choices(pages, k=rng.randint(1, 4)), session=f"r{i}-", minute=i)
        if i % 4 == 3:
            expected = _query(location, where)
            mirror.read(reader, lambda m, e=expected: m.table(COLUMNS) == e)
    assert mirror.kinds.get("remove"), "the workload never made a row leave: proves little"
    _leave(writer, reader)


def test_the_python_client_gets_upsert_and_remove(live, location):
    _put(live, ["/x"])
    with Client(location) as client:
        with client.subscribe(DAILY, where={"view_count": 1}, messages=2) as sub:
            kinds = []
            for kind, table, _cursor, _detail in sub:
                kinds.append(kind)
                if kind == "snapshot_end":
                    _put(live, ["/y"], session="t")
                elif kind == "upsert":
                    assert table.column("page_url").to_pylist() == ["/y"]
                    _put(live, ["/y"], session="u")  # 2 views: no longer `= 1`
                elif kind == "remove":
                    assert table.column("page_url").to_pylist() == ["/y"]
                    assert table.column("view_count").to_pylist() == [None]
                    break
    assert [k for k in kinds if k != "heartbeat"] == [
        "snapshot",
        "snapshot_end",
        "upsert",
        "remove",
    ]


def test_a_cursor_from_another_lifetime_of_the_log_gets_resync(live):
    _put(live, ["/x"])
    writer, reader = _subscribe(live, subscribe=DAILY)
    mirror = Mirror(KEYS)
    mirror.read(reader, _snapshot_done)
    _leave(writer, reader)
    _put(live, ["/y"], session="t")
    lifetime = mirror.lifetime
    assert lifetime
    # The same cursor with its own lifetime replays; with another one it is not trusted.
    writer, reader = _subscribe(
        live, subscribe=DAILY, snapshot=False, cursor=mirror.cursor, lifetime=lifetime
    )
    same = Mirror(KEYS)
    same.read(reader, lambda m: m.kinds.get("update") or m.kinds.get("resync"))
    assert "resync" not in same.kinds and [k[0] for k in same.rows] == ["/y"]
    _leave(writer, reader)
    writer, reader = _subscribe(
        live, subscribe=DAILY, snapshot=False, cursor=mirror.cursor, lifetime="another"
    )
    other = Mirror(KEYS)
    other.read(reader, _snapshot_done)
    assert other.kinds.get("resync") == 1 and sorted(k[0] for k in other.rows) == ["/x", "/y"]
    _leave(writer, reader)
