"""Many live subscriptions on one DoExchange stream (`Client.multiplex()`): each stays
equal to a fresh query, ends alone when unsubscribed, and a stalled stream is retired
alone while ingest and other streams go on (both backends)."""

from __future__ import annotations

import concurrent.futures
import itertools
import random
import threading
import time

import pyarrow as pa
import pytest
from flightdeck import Client
from flightdeck.live_mux import Multiplex, decode_frames, encode_frame

from tests.flight_server.test_live import _put, _server
from tests.live.mirror import Mirror

DAILY = "va_pageview_aggregate"
KEYS = ("page_url", "date")
COLUMNS = ["page_url", "date", "view_count"]
WHERES = {
    "all": None,
    "some": {"page_url": {"in": ["/p0", "/p1", "/p2"]}},
    "busy": {"view_count": {">=": 3}},  # a non-key filter: rows enter and leave
    "quiet": {"view_count": {"<": 3}},
}


@pytest.fixture
def location(store, nats_server, tmp_path):
    with _server(store, nats_server.url, tmp_path) as where:
        yield where


def _query(location: str, where: dict | None) -> list[tuple]:
    with Client(location) as client:
        table = client.view(DAILY, where=where, columns=COLUMNS)
    return sorted(tuple(r[c] for c in COLUMNS) for r in table.to_pylist())


def _apply(mirrors: dict[str, Mirror], message) -> None:
    rows = message.table.to_pylist() if message.table is not None else []
    mirrors[message.id].apply(message.detail, rows)


def _read_until(stream: Multiplex, mirrors: dict[str, Mirror], until, timeout=30.0) -> list:
    """Apply messages until `until()`; every message read, in order."""
    deadline, seen = time.monotonic() + timeout, []
    messages = iter(stream)
    while not until():
        assert time.monotonic() < deadline, {k: m.kinds for k, m in mirrors.items()}
        message = next(messages)
        seen.append(message)
        if message.id in mirrors:
            assert message.kind != "error", message.detail
            _apply(mirrors, message)
    return seen


def test_a_frame_carries_a_header_and_rows_of_any_schema():
    rows = pa.table({"a": [1, 2], "b": ["x", None]})
    frames = encode_frame({"id": "s1", "type": "update"}, rows) + encode_frame({"id": 2}, None)
    (header, table), second = decode_frames(frames)
    assert header == {"id": "s1", "type": "update"} and table.equals(rows)
    assert second == ({"id": 2}, None)


def test_multiplexed_subscriptions_each_equal_a_fresh_query_after_random_puts(location):
    rng = random.Random(20)
    pages = [f"/p{i}" for i in range(6)]
    with Client(location) as client, client.multiplex() as stream:
        _put(client._flight, pages, session="seed")
        mirrors = {}
        for name, where in WHERES.items():
            assert stream.subscribe(DAILY, id=name, where=where, messages=2) == name
            mirrors[name] = Mirror(KEYS)
        _read_until(
            stream, mirrors, lambda: all(m.kinds.get("snapshot_end") for m in mirrors.values())
        )
        for round in range(6):
            _put(client._flight, rng.choices(pages, k=rng.randint(1, 8)), session=f"r{round}-")
        expected = {name: _query(location, where) for name, where in WHERES.items()}
        _read_until(
            stream,
            mirrors,
            lambda: all(m.table(COLUMNS) == expected[n] for n, m in mirrors.items()),
        )
        assert mirrors["busy"].kinds.get("upsert") and mirrors["quiet"].kinds.get("remove")


def test_unsubscribe_stops_only_that_one(location):
    with Client(location) as client, client.multiplex() as stream:
        mirrors = {"kept": Mirror(KEYS), "gone": Mirror(KEYS)}
        for name in mirrors:
            stream.subscribe(DAILY, id=name)
        _read_until(
            stream, mirrors, lambda: all(m.kinds.get("snapshot_end") for m in mirrors.values())
        )
        stream.unsubscribe("gone")
        time.sleep(0.5)  # the request reaches the stream's writer before the put
        _put(client._flight, ["/after"])
        seen = _read_until(
            stream,
            mirrors,
            lambda: ("/after", "2024-01-15") in {(k[0], str(k[1])) for k in mirrors["kept"].rows},
        )
        stream.subscribe(DAILY, id="late", snapshot=False)  # the stream still takes requests
        _put(client._flight, ["/later"], session="t")
        mirrors["late"] = Mirror(KEYS)
        seen += _read_until(stream, mirrors, lambda: mirrors["late"].kinds.get("update"))
        assert not [m for m in seen if m.id == "gone"]


def test_a_bad_request_is_refused_for_its_id_alone(location):
    with Client(location) as client, client.multiplex() as stream:
        stream.subscribe("va_nope", id="bad")
        stream.subscribe(DAILY, id="good")
        mirrors = {"good": Mirror(KEYS)}
        seen = _read_until(stream, mirrors, lambda: mirrors["good"].kinds.get("snapshot_end"))
        refused = [m for m in seen if m.id == "bad"]
        assert refused[0].kind == "error" and "va_nope" in refused[0].detail["reason"]


def test_a_stalled_stream_is_retired_alone_with_cursors(store, nats_server, tmp_path):
    # ~30 MB owed to the stalled stream: more than gRPC buffers, so its writer blocks. A
    # put fits the buffer (a reader one put behind keeps up); two do not.
    pages, puts, stalled_subscriptions = 10_000, 4, 10
    with (
        _server(store, nats_server.url, tmp_path, live_buffer_rows=15_000) as where,
        Client(where) as client,
        client.multiplex() as stalled,
        client.multiplex() as healthy,
    ):
        ids = [stalled.subscribe(DAILY) for _ in range(stalled_subscriptions)]
        mirror = {"h": Mirror(KEYS)}
        healthy.subscribe(DAILY, id="h")
        _read_until(healthy, mirror, lambda: mirror["h"].kinds.get("snapshot_end"))
        with concurrent.futures.ThreadPoolExecutor(1) as reading:
            seen = reading.submit(
                _read_until, healthy, mirror, lambda: len(mirror["h"].rows) == pages * puts, 90
            )
            started = time.monotonic()
            for i in range(puts):
                _put(client._flight, [f"/p{i}-{j}" for j in range(pages)], session=f"s{i}-")
            assert time.monotonic() - started < 30  # ingest did not wait for the stalled one
            seen.result()
        errors = {}
        for message in stalled:  # it reads at last: each subscription's error, with a cursor
            if message.kind == "error":
                errors[message.id] = message
                if len(errors) == len(ids):
                    break
        assert all("fell behind" in e.detail["reason"] and e.cursor >= 0 for e in errors.values())


def test_identical_snapshots_arriving_together_share_a_few_reads(store):
    from flightdeck.flight_server.live.snapshots import SnapshotReads

    reads = SnapshotReads(store, max_rows=1000)
    try:
        sql = f"SELECT page_url, date, view_count FROM {DAILY}"
        futures = [reads.rows(sql) for _ in range(200)]
        tables = [f.result(30) for f in futures]
        # The four readers' first reads, then one for all the rest (a loaded machine may
        # let a read finish while the requests still arrive: a few more).
        assert reads.reads <= 10
        assert all(t.equals(tables[0]) for t in tables)
    finally:
        reads.close()


def test_a_message_read_leaves_the_rest_of_its_flight_message_for_the_next_read(location):
    """One Flight message carries many subscriptions' frames: a loop that stops after one
    message and a later loop over the stream must not lose the frames in between."""
    with Client(location) as client, client.multiplex() as stream:
        _put(client._flight, ["/a", "/b"], session="s")
        ids = [stream.subscribe(DAILY, id=i) for i in range(10)]
        ended: set = set()
        deadline = time.monotonic() + 20
        while ended != set(ids):
            assert time.monotonic() < deadline, f"snapshot_end seen for {sorted(ended)} only"
            for message in stream:  # a fresh loop each time, left after one message
                if message.kind == "snapshot_end":
                    ended.add(message.id)
                break


def test_a_storm_of_subscribers_during_puts_each_equals_a_fresh_query(location):
    """Snapshots shared by many while puts go on: each member's snapshot and deltas
    still add up to the query (the register-then-read rule holds for every member)."""
    pages = [f"/p{i}" for i in range(5)]
    with Client(location) as client, client.multiplex() as stream:
        _put(client._flight, pages, session="seed")
        stop = threading.Event()

        def churn() -> None:
            for n in itertools.count():
                if stop.is_set():
                    return
                _put(client._flight, [pages[n % 5], pages[(n * 3) % 5]], session=f"c{n}-")

        mirrors = {i: Mirror(KEYS) for i in range(60)}
        with concurrent.futures.ThreadPoolExecutor(1) as putting:
            churning = putting.submit(churn)
            for i in mirrors:
                stream.subscribe(DAILY, id=i, messages=2)
            _read_until(
                stream, mirrors, lambda: all(m.kinds.get("snapshot_end") for m in mirrors.values())
            )
            stop.set()
            churning.result()
        expected = _query(location, None)
        try:
            _read_until(
                stream, mirrors, lambda: all(m.table(COLUMNS) == expected for m in mirrors.values())
            )
        except AssertionError:  # which subscribers differ, and how: the rows say more
            odd = {i: m.table(COLUMNS) for i, m in mirrors.items() if m.table(COLUMNS) != expected}
            raise AssertionError(f"expected {expected}; differing: {odd}") from None
