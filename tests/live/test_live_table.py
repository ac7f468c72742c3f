"""flightdeck.LiveTable stays equal to a fresh query of its view: after random puts, rows
leaving a filter, a reaggregate's removal, top-N churn, a server restart and a resync
(both backends)."""

from __future__ import annotations

import contextlib
import random
import threading

import pyarrow as pa
import pytest
from flightdeck import Change, Client, LiveTable, QueryError
from flightdeck.ingest import pipeline
from flightdeck.live_table import BUILT_IN_KEYS
from flightdeck.views.live_views import LIVE_KEYS

from tests.flight_server.test_live import _put

# Random puts and a server restart: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

DAILY = "va_pageview_aggregate"
COLUMNS = ["page_url", "date", "view_count"]


def _put_via(live_client: Client, pages: list[str], session: str, minute: int = 0) -> None:
    _put(live_client._flight, pages, session=session, minute=minute)


def _query(live_client: Client, where: dict | None = None) -> pa.Table:
    """What a fresh query gives, in LiveTable's order (by key)."""
    table = live_client.view(DAILY, where=where, columns=COLUMNS)
    return table.sort_by([("page_url", "ascending"), ("date", "ascending")])


def _equal_to_query(live: LiveTable, live_client: Client, where: dict | None = None) -> pa.Table:
    expected = _query(live_client, where)
    return live.wait_for(lambda t: t.select(COLUMNS).equals(expected), timeout=20)


def test_a_live_table_equals_a_fresh_query_after_random_puts_with_a_filter(live_client):
    rng = random.Random(7)
    pages = [f"/p{i}" for i in range(6)]
    where = {"view_count": {">=": 3, "<": 7}}  # rows enter, then leave as they grow
    changes: list[Change] = []
    with LiveTable(live_client, DAILY, where=where, columns=["view_count"]) as live:
        live.on_change(changes.append)
        assert live.wait_ready().num_rows == 0
        for i in range(12):
            _put_via(live_client, rng.choices(pages, k=rng.randint(1, 4)), f"r{i}-", minute=i)
            if i % 3 == 2:
                _equal_to_query(live, live_client, where)
        assert live.table.column_names == COLUMNS  # the keys first, as asked
    assert any(c.removed for c in changes), "no row ever left the filter: proves little"
    assert any(c.upserted and not c.reset for c in changes)


def test_a_row_a_reaggregate_deletes_leaves_the_live_table(live_client, store):
    _put_via(live_client, ["/x", "/ghost"], "s")
    removed: list[tuple] = []
    with LiveTable(live_client, DAILY) as live:
        live.on_change(lambda change: removed.extend(change.removed))
        live.wait_for(lambda t: t.num_rows == 2)
        with store.write() as conn, conn.cursor() as cursor:
            cursor.execute("DELETE FROM tb_pageview_event WHERE page_url = '/ghost'")
            conn.commit()
        assert pipeline.reaggregate(store, None).removed >= 1
        table = live.wait_for(lambda t: t.num_rows == 1)
        assert table.column("page_url").to_pylist() == ["/x"]
        assert [key[0] for key in removed] == ["/ghost"]
        _equal_to_query(live, live_client)


def test_a_live_top_n_follows_the_order_through_churn(live_client):
    rng = random.Random(4)
    pages = [f"/p{i}" for i in range(8)]
    _put_via(live_client, pages, "seed")
    top = {"order_by": "view_count", "desc": True, "limit": 3}
    sql = (
        f"SELECT page_url, date, view_count FROM {DAILY} "
        "ORDER BY view_count DESC NULLS LAST, page_url, date LIMIT 3"
    )
    removed = []
    with LiveTable(live_client, DAILY, top=top, columns=["view_count"]) as live:
        live.on_change(lambda change: removed.extend(change.removed))
        for i in range(8):
            hot = rng.sample(pages, 2)
            _put_via(live_client, [rng.choice(hot) for _ in range(rng.randint(1, 5))], f"r{i}-")
            expected = live_client.query(sql)  # in the top's own order: LiveTable keeps it
            live.wait_for(lambda t, e=expected: t.select(COLUMNS).equals(e), timeout=20)
    assert removed, "no row ever left the top-N: proves little"


def test_a_live_table_resumes_after_the_server_restarts(live_server, live_client):
    _put_via(live_client, ["/a", "/b"], "s")
    with LiveTable(live_client, DAILY) as live:
        live.wait_for(lambda t: t.num_rows == 2)
        cursor = live.cursor
        live_server.restart()
        _put_via(live_client, ["/a", "/c"], "after")  # the same Client reaches the new server
        _equal_to_query(live, live_client)
        assert live.resumes >= 1
        assert live.cursor > cursor
        assert live.table.num_rows == 3


def test_a_cursor_from_another_lifetime_gets_a_whole_new_snapshot(live_client):
    _put_via(live_client, ["/a", "/b"], "s")
    resets: list[Change] = []
    with LiveTable(live_client, DAILY) as live:
        live.wait_for(lambda t: t.num_rows == 2)
        live.on_change(lambda change: resets.append(change) if change.reset else None)
        live.lifetime = "another-lifetime"  # as after a NATS without storage restarted
        live._subscription.cancel()  # the stream breaks under it
        _put_via(live_client, ["/c"], "after")
        _equal_to_query(live, live_client)
    assert resets, "the resume was not answered with a resync"
    assert sorted(k[0] for k in resets[0].upserted) in (["/a", "/b"], ["/a", "/b", "/c"])


def test_conversions_and_listeners_see_the_same_rows(live_client):
    pytest.importorskip("polars")
    _put_via(live_client, ["/x", "/y", "/y"], "s")
    seen = threading.Event()
    with LiveTable(live_client, DAILY, where={"page_url": {"in": ["/x", "/y"]}}) as live:
        live.on_change(lambda change: seen.set())
        table = live.wait_for(lambda t: t.num_rows == 2)
        assert seen.wait(5)
        assert live.to_pandas().equals(table.to_pandas())
        assert live.to_polars().equals(__import__("polars").from_arrow(table))


def test_a_refused_request_is_raised_by_the_waiter_and_stops_the_thread(live_client):
    with LiveTable(live_client, "va_nope") as live:
        with pytest.raises(QueryError) as refused:
            live.wait_ready(timeout=10)
        assert "va_nope" in str(refused.value)
        live._thread.join(5)
        assert not live._thread.is_alive()


def test_the_clients_built_in_keys_are_the_servers():
    assert BUILT_IN_KEYS == LIVE_KEYS


def test_close_ends_the_thread(live_client):
    live = LiveTable(live_client, DAILY)
    live.wait_ready()
    live.close()
    assert not live._thread.is_alive()
    with contextlib.suppress(Exception):
        live.close()  # twice is harmless
