"""Live subscriptions over DoExchange on both backends, fed by a real nats-server."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck import Client
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.background import Background

from tests import nats_client
from tests.frozen import frozen
from tests.services import wait_for

EVENTS = flight.FlightDescriptor.for_path("events", "pageview")


@contextlib.contextmanager
def _server(store, nats_url: str, tmp_path, **options):
    """A server process's parts, in this process: Flight server, hub, worker and publisher."""
    settings = Settings(port=0, data_dir=tmp_path, raw_retention_days=0, heartbeat=0.5, **options)
    background = Background(settings, store, nats_url, worker=True).start()
    assert background.wait_ready(10)
    server = FlightdeckServer(settings, store, committed=background.committed, hub=background.hub)
    try:
        yield f"grpc://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        background.stop()


@pytest.fixture
def location(store, nats_server, tmp_path):
    with _server(store, nats_server.url, tmp_path) as where:
        yield where


@pytest.fixture
def live(location):
    client = flight.connect(location)
    yield client
    client.close()


def _put(client, pages: list[str], session: str = "s", minute: int = 0) -> None:
    n = len(pages)
    table = pa.table(
        {
            "session_id": [f"{session}{i}" for i in range(n)],
            "page_url": pages,
            "recorded_at": [f"2024-01-15T10:{minute:02d}:{i % 60:02d}Z" for i in range(n)],
        }
    )
    writer, meta = client.do_put(EVENTS, table.schema)
    writer.write_table(table)
    writer.done_writing()
    meta.read()
    writer.close()


def _subscribe(client, **request):
    descriptor = flight.FlightDescriptor.for_command(json.dumps(request).encode())
    writer, reader = client.do_exchange(descriptor)
    return writer, reader


def _leave(writer, reader) -> None:
    """What a client does when it is done: cancel the call."""
    reader.cancel()
    with contextlib.suppress(flight.FlightCancelledError):
        writer.close()


def _messages(reader, until, timeout: float = 15.0):
    """Read (metadata, rows) until `until(metadata)` is true."""
    deadline = time.monotonic() + timeout
    out = []
    while time.monotonic() < deadline:
        chunk = reader.read_chunk()
        meta = json.loads(chunk.app_metadata.to_pybytes())
        out.append((meta, chunk.data.to_pylist() if chunk.data is not None else []))
        if until(meta, out):
            return out
    raise AssertionError(f"gave up after {out}")


def _published(store) -> bool:
    """Every commit so far is in the AGGREGATES stream: the publisher empties the outbox
    only once JetStream has acknowledged an entry."""
    with store.read_internal("SELECT count(*) AS n FROM tb_aggregate_outbox") as reader:
        return reader.read_all().column(0).to_pylist() == [0]


class _Loader:
    """Puts events on a thread until stopped, counting the commits."""

    def __init__(self, client, pages: list[str], prefix: str) -> None:
        self.commits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, pages, prefix))

    def _run(self, client, pages: list[str], prefix: str) -> None:
        while not self._stop.is_set():
            _put(client, pages, session=f"{prefix}{self.commits}-", minute=self.commits % 60)
            self.commits += 1

    def start(self) -> _Loader:
        self._thread.start()
        return self

    def committed_more_than(self, commits: int) -> None:
        assert wait_for(lambda: self.commits > commits), "the loader committed nothing"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _state(messages) -> dict:
    """What a client holds after applying snapshot and updates: newest row per key."""
    state = {}
    for meta, rows in messages:
        if meta["type"] in ("snapshot", "update"):
            for row in rows:
                state[(row["page_url"], row["date"])] = row["view_count"]
    return state


def test_a_filtered_subscription_gets_only_its_rows(live):
    _put(live, ["/x", "/y"])
    writer, reader = _subscribe(
        live, subscribe="va_pageview_aggregate", where={"page_url": "/x"}, columns=["view_count"]
    )
    first = _messages(reader, lambda meta, _: meta["type"] == "snapshot_end")
    assert next(rows for meta, rows in first if meta["type"] == "snapshot")[0]["view_count"] == 1
    _put(live, ["/y", "/y"], session="t")
    _put(live, ["/x", "/x", "/x"], session="u")
    updates = _messages(reader, lambda meta, _: meta["type"] == "update")
    (_meta, rows) = updates[-1]
    assert [(r["page_url"], r["view_count"]) for r in rows] == [("/x", 4)]
    assert set(rows[0]) == {"page_url", "date", "view_count"}  # projection, keys kept
    assert all(m["type"] == "heartbeat" for m, _ in updates[:-1])
    _leave(writer, reader)


def test_snapshot_and_deltas_during_ingest_end_equal_a_fresh_query(live):
    loader = _Loader(live, ["/a", "/b", "/a"], prefix="m").start()
    try:
        loader.committed_more_than(0)  # join while commits are flowing
        writer, reader = _subscribe(live, subscribe="va_pageview_aggregate")
        received = _messages(reader, lambda meta, out: len(out) > 8 and meta["type"] == "update")
    finally:
        loader.stop()
    # After ingest stops, keep reading until the subscriber has caught up with the log.
    truth = {
        (r["page_url"], r["date"]): r["view_count"]
        for r in live.do_get(flight.Ticket(b"va_pageview_aggregate")).read_all().to_pylist()
    }
    received += _messages(reader, lambda meta, out: _state(received + out) == truth)
    assert _state(received) == truth
    _leave(writer, reader)


def _truth(client, pages: set[str] | None = None) -> dict:
    rows = client.do_get(flight.Ticket(b"va_pageview_aggregate")).read_all().to_pylist()
    return {
        (r["page_url"], r["date"]): r["view_count"]
        for r in rows
        if pages is None or r["page_url"] in pages
    }


def _no_doubles(messages) -> bool:
    """Each key's rows arrive with strictly growing versions: nothing applied twice."""
    held: dict = {}
    for meta, rows in messages:
        if meta["type"] in ("snapshot", "update"):
            for row in rows:
                key = (row["page_url"], row["date"])
                if row["version"] <= held.get(key, -1):
                    return False
                held[key] = row["version"]
    return True


def test_identical_and_different_subscriptions_each_get_exactly_their_rows(live):
    both = {"page_url": {"in": ["/a", "/b"]}}
    requests = [both, both, {"page_url": "/b"}]  # two share the hub's work, one does not
    pages = [{"/a", "/b"}, {"/a", "/b"}, {"/b"}]
    loader = _Loader(live, ["/a", "/b", "/c"], prefix="g").start()
    try:
        opened = []
        joined_after = 0
        for where in requests:  # joining while updates flow: each after another commit
            loader.committed_more_than(joined_after)
            joined_after = loader.commits
            opened.append(
                _subscribe(
                    live,
                    subscribe="va_pageview_aggregate",
                    where=where,
                    columns=["view_count", "version"],
                )
            )
        received = [
            _messages(r, lambda meta, out: len(out) > 4 and meta["type"] == "update")
            for _, r in opened
        ]
    finally:
        loader.stop()
    for (writer, reader), got, wanted in zip(opened, received, pages, strict=True):
        truth = _truth(live, wanted)
        got += _messages(reader, lambda meta, out, g=got, t=truth: _state(g + out) == t)
        assert _state(got) == truth
        assert _no_doubles(got)
        _leave(writer, reader)


def test_resuming_into_a_busy_group_gets_no_gap_and_no_double(live, store):
    request = {"subscribe": "va_pageview_aggregate", "columns": ["view_count", "version"]}
    _put(live, ["/x", "/y"])
    steady_writer, steady = _subscribe(live, **request)  # keeps the group alive throughout
    held = _messages(steady, lambda meta, _: meta["type"] == "snapshot_end")
    writer, reader = _subscribe(live, **request)
    first = _messages(reader, lambda meta, _: meta["type"] == "heartbeat" and meta["cursor"] >= 2)
    cursor = first[-1][0]["cursor"]
    _leave(writer, reader)
    _put(live, ["/x", "/x"], session="away")  # missed while away
    _put(live, ["/z"], session="away2")
    assert wait_for(lambda: _published(store))  # the missed updates are in the log to replay
    writer, reader = _subscribe(live, **request, snapshot=False, cursor=cursor)
    resumed = _messages(reader, lambda meta, _: meta["type"] == "update")
    _put(live, ["/x", "/y", "/z"], session="back")  # live again, for both members
    truth = _truth(live)
    resumed += _messages(reader, lambda meta, out: _state(first + resumed + out) == truth)
    assert _state(first + resumed) == truth
    assert _no_doubles(first + resumed)
    held += _messages(steady, lambda meta, out: _state(held + out) == truth)
    assert _no_doubles(held)
    _leave(writer, reader)
    _leave(steady_writer, steady)


def test_resume_from_a_cursor_gets_exactly_what_was_missed(live, store):
    _put(live, ["/x", "/y"])
    writer, reader = _subscribe(live, subscribe="va_pageview_aggregate")
    # A client keeps the newest cursor it saw: heartbeats carry it forward when quiet.
    first = _messages(reader, lambda meta, _: meta["type"] == "heartbeat" and meta["cursor"] >= 2)
    cursor = first[-1][0]["cursor"]
    _leave(writer, reader)
    _put(live, ["/x", "/x"], session="later")  # missed while away: /x changes twice
    _put(live, ["/z"], session="new")
    # Both missed commits are in the log, so the replay brings them in one update.
    assert wait_for(lambda: _published(store))
    writer, reader = _subscribe(
        live, subscribe="va_pageview_aggregate", snapshot=False, cursor=cursor
    )
    *_, (meta, rows) = _messages(reader, lambda meta, _: meta["type"] == "update")
    assert meta["cursor"] > cursor
    assert sorted((r["page_url"], r["view_count"]) for r in rows) == [("/x", 3), ("/z", 1)]
    assert _state([*first, (meta, rows)]) == {
        (r["page_url"], r["date"]): r["view_count"]
        for r in live.do_get(flight.Ticket(b"va_pageview_aggregate")).read_all().to_pylist()
    }
    _leave(writer, reader)


@pytest.mark.slow  # waits out a JetStream request timeout with the nats-server stopped
def test_a_resume_while_nats_does_not_answer_waits_for_it_and_gets_exactly_what_was_missed(
    live, store, nats_server
):
    # A JetStream leader election (a cluster node killed) leaves the update log
    # unanswered for seconds; a resume meanwhile must wait for it, not fail the call.
    _put(live, ["/x"])
    writer, reader = _subscribe(live, subscribe="va_pageview_aggregate")
    first = _messages(reader, lambda meta, _: meta["type"] == "heartbeat" and meta["cursor"] >= 1)
    cursor = first[-1][0]["cursor"]
    _leave(writer, reader)
    _put(live, ["/x", "/z"], session="later")
    assert wait_for(lambda: _published(store))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with frozen(nats_server.pid):  # alive, connected, silent: requests time out
            writer, reader = _subscribe(
                live, subscribe="va_pageview_aggregate", snapshot=False, cursor=cursor
            )
            got = pool.submit(_messages, reader, lambda meta, _: meta["type"] == "update", 40)
            time.sleep(7)  # longer than one JetStream request's timeout
        got = got.result()
    assert [meta["type"] for meta, _ in got] == ["update"]  # no resync: the log was read
    assert sorted((r["page_url"], r["view_count"]) for r in got[-1][1]) == [("/x", 2), ("/z", 1)]
    _leave(writer, reader)


def test_a_cursor_older_than_the_log_gets_resync_and_a_fresh_snapshot(live, store, nats_server):
    _put(live, ["/x"])
    assert wait_for(lambda: _published(store))  # purged below, not published after the purge
    nats_client.purge(nats_server.url, "AGGREGATES")  # retention moved past cursor 1
    writer, reader = _subscribe(live, subscribe="va_pageview_aggregate", snapshot=False, cursor=1)
    got = _messages(reader, lambda meta, _: meta["type"] == "snapshot_end")
    assert next(m["type"] for m, _ in got) == "resync"
    assert [v for v in _state(got).values()] == [1]
    _leave(writer, reader)


def test_a_cursor_from_the_future_gets_resync_and_a_fresh_snapshot(live):
    # A cursor this server never sent (another log, a wiped stream): the client's
    # state cannot be trusted, so it is told to start over, never left silently stale.
    _put(live, ["/x"])
    writer, reader = _subscribe(live, subscribe="va_pageview_aggregate")
    now = _messages(reader, lambda meta, _: meta["type"] == "snapshot_end")[-1][0]["cursor"]
    _leave(writer, reader)
    future = now + 1_000
    writer, reader = _subscribe(
        live, subscribe="va_pageview_aggregate", snapshot=False, cursor=future
    )
    got = _messages(reader, lambda meta, _: meta["type"] in ("snapshot_end", "heartbeat"))
    assert got[0][0]["type"] == "resync", got
    assert got[-1][0]["type"] == "snapshot_end" and got[-1][0]["cursor"] < future
    assert list(_state(got).values()) == [1]
    _leave(writer, reader)


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        ({"subscribe": "va_pageview_event"}, "has no live updates"),
        ({"subscribe": "va_pageview_aggregate", "where": {"page_url": {"like": "/x%"}}}, "like"),
        ({"subscribe": "va_pageview_aggregate", "columns": ["nope"]}, "nope"),
    ],
)
def test_bad_subscriptions_are_refused_with_the_reason(live, request_, words):
    writer, reader = _subscribe(live, **request_)
    with pytest.raises(pa.ArrowInvalid) as refused:  # INVALID_ARGUMENT, not INTERNAL
        reader.read_chunk()
    assert words in str(refused.value)
    with contextlib.suppress(pa.ArrowInvalid):  # the call already ended with the refusal
        writer.close()


def test_python_client_subscribe_yields_kind_table_cursor(live, location):
    _put(live, ["/x"])
    with (
        Client(location) as client,
        client.subscribe(
            "va_pageview_aggregate", where={"page_url": "/x"}, columns=["view_count"]
        ) as subscription,
    ):
        messages = iter(subscription)
        kind, table, cursor, _ = next(messages)
        assert kind == "snapshot" and table.column("view_count").to_pylist() == [1]
        assert next(messages).kind == "snapshot_end"
        _put(live, ["/x"], session="again")
        update = next(m for m in messages if m.kind == "update")
        assert update.table.column("view_count").to_pylist() == [2]
        assert update.cursor >= cursor and subscription.cursor == update.cursor


@pytest.mark.slow  # a long run (processes, waits): make test runs it
def test_a_stalled_subscriber_is_closed_alone_with_a_cursor(store, nats_server, tmp_path):
    pages, puts = 20_000, 6  # ~15 MB: more than gRPC buffers, so the stalled write blocks
    with _server(store, nats_server.url, tmp_path, live_buffer_rows=30_000) as where:
        client = flight.connect(where)
        stalled_writer, stalled = _subscribe(client, subscribe="va_pageview_aggregate")
        healthy_writer, healthy = _subscribe(client, subscribe="va_pageview_aggregate")
        _messages(healthy, lambda meta, _: meta["type"] == "snapshot_end")
        # The healthy subscriber reads while the puts go in, as a live dashboard does;
        # left unread until the end, it too could fall behind on a loaded machine.
        with concurrent.futures.ThreadPoolExecutor(1) as reading:
            seen = reading.submit(
                _messages, healthy, lambda meta, out: len(_state(out)) == pages * puts, 60
            )
            started = time.monotonic()
            for i in range(puts):
                _put(client, [f"/p{i}-{j}" for j in range(pages)], session=f"s{i}-")
            # Ingest did not wait for the stalled reader: it would wait forever (the bound
            # is loose, so that a loaded machine's slow puts are not taken for waiting).
            assert time.monotonic() - started < 120
            assert set(_state(seen.result()).values()) == {1}
        # The stalled client finally reads: what fits was sent, then the error and a cursor.
        got = _messages(stalled, lambda meta, _: meta["type"] == "error", 60)
        assert "fell behind" in got[-1][0]["reason"] and got[-1][0]["cursor"] >= 0
        assert len(_state(got)) < pages * puts
        _leave(healthy_writer, healthy)
        _leave(stalled_writer, stalled)
        client.close()


def test_an_update_put_into_one_server_reaches_a_subscriber_of_another(
    store, nats_server, tmp_path
):
    with (
        _server(store, nats_server.url, tmp_path / "a") as first,
        _server(store, nats_server.url, tmp_path / "b") as second,
    ):
        writer_client, reader_client = flight.connect(first), flight.connect(second)
        writer, reader = _subscribe(reader_client, subscribe="va_pageview_aggregate")
        _messages(reader, lambda meta, _: meta["type"] == "snapshot_end")
        _put(writer_client, ["/shared"])
        *_, (_meta, rows) = _messages(reader, lambda meta, _: meta["type"] == "update")
        assert [(r["page_url"], r["view_count"]) for r in rows] == [("/shared", 1)]
        _leave(writer, reader)
        writer_client.close()
        reader_client.close()


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_tail_prints_live_rows(live, location, tmp_path):
    _put(live, ["/products"])
    tail = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flightdeck.cli",
            "tail",
            "va_pageview_aggregate",
            "--where",
            "page_url=/products",
            "--columns",
            "view_count",
            "--location",
            location,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "view_count=1" in tail.stdout.readline()
        assert tail.stdout.readline().startswith("snapshot_end")
        _put(live, ["/products", "/other"], session="more")
        line = tail.stdout.readline()
        assert line.startswith("update") and "page_url=/products" in line and "view_count=2" in line
    finally:
        tail.terminate()
        tail.wait(10)


def test_changes_on_sends_only_rows_whose_watched_columns_changed(live):
    _put(live, ["/x"], session="a")
    writer, reader = _subscribe(
        live,
        subscribe="va_pageview_aggregate",
        columns=["unique_visitors"],
        changes_on=["unique_visitors"],
        snapshot=False,
    )
    _messages(reader, lambda meta, _: meta["type"] == "heartbeat")
    _put(live, ["/x"], session="a", minute=5)  # same session again: views change, visitors do not
    _put(live, ["/x"], session="b")  # a new visitor
    *_, (_meta, rows) = _messages(reader, lambda meta, _: meta["type"] == "update")
    assert [(r["page_url"], r["unique_visitors"]) for r in rows] == [("/x", 2)]
    _leave(writer, reader)


def test_subscriber_limit_refuses_the_extra_subscription_by_name(store, nats_server, tmp_path):
    with _server(store, nats_server.url, tmp_path, max_subscribers=1) as where:
        client = flight.connect(where)
        writer, reader = _subscribe(client, subscribe="va_pageview_aggregate")
        _messages(reader, lambda meta, _: meta["type"] == "snapshot_end")
        extra_writer, extra = _subscribe(client, subscribe="va_pageview_hourly")
        with pytest.raises(flight.FlightUnavailableError, match="--max-subscribers"):
            extra.read_chunk()
        with contextlib.suppress(flight.FlightError):
            extra_writer.close()  # the refusal is reported here once more
        _leave(writer, reader)
        client.close()


def test_live_record_batches_are_cut_at_the_servers_batch_rows(store, nats_server, tmp_path):
    with _server(store, nats_server.url, tmp_path, batch_rows=2) as where:
        client = flight.connect(where)
        _put(client, ["/a", "/b", "/c", "/d", "/e"])
        writer, reader = _subscribe(client, subscribe="va_pageview_aggregate")
        messages = _messages(reader, lambda meta, _: meta["type"] == "snapshot_end")
        snapshots = [rows for meta, rows in messages if meta["type"] == "snapshot"]
        assert sum(len(rows) for rows in snapshots) == 5
        assert max(len(rows) for rows in snapshots) == 2
        _leave(writer, reader)
        client.close()
