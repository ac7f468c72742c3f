"""The NATS JetStream worker on both backends, with a real nats-server: exact, resilient, loud.

Each test runs the server process's background loop (worker, publisher,
retention) against a fresh nats-server and store, and reads results the way a
user does: over Flight, or from NATS subjects.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import nats
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.background import Background
from flightdeck.flight_server.nats_process import NatsProcess
from flightdeck.ingest import ingest
from flightdeck.ingest.nats_worker import IngestWorker
from flightdeck.ingest.publisher import updates_for
from flightdeck.ingest.streams import AGGREGATE_SUBJECT, AGGREGATES, EVENTS, ensure_stream

from tests import nats_client
from tests.services import wait_for


def _seed_events(n: int = 10, page: str = "/test-page") -> list[dict]:
    """The seed's message shape, unchanged (the README, "Publish events to NATS")."""
    return [
        {
            "user_pk": 2,
            "session_id": f"session-{i % 5}",
            "page_url": page,
            "date": "2024-01-15",
            "timestamp": f"2024-01-15T10:{i:02d}:00Z",
        }
        for i in range(n)
    ]


@pytest.fixture
def live(store, nats_server, tmp_path):
    settings = Settings(port=0, data_dir=tmp_path, ingest_wait_ms=20, raw_retention_days=0)
    background = Background(settings, store, nats_server.url, worker=True).start()
    assert background.wait_ready(10)
    server = FlightdeckServer(settings, store, committed=background.committed)
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    yield SimpleNamespace(client=client, nats=nats_server, store=store)
    client.close()
    server.shutdown()
    background.stop()


def _view(client, view: str) -> list[dict]:
    return client.do_get(flight.Ticket(view.encode())).read_all().to_pylist()


def _count(client, view: str = "va_pageview_event") -> int:
    return len(_view(client, view))


def test_seed_json_events_give_exact_daily_aggregates(live):
    nats_client.publish(live.nats.url, _seed_events(10))
    assert wait_for(lambda: _count(live.client) == 10, timeout=20)
    query = flight.FlightDescriptor.for_command(
        b"SELECT page_url, date, view_count, unique_visitors FROM va_pageview_aggregate"
    )
    info = live.client.get_flight_info(query)
    rows = live.client.do_get(info.endpoints[0].ticket).read_all().to_pylist()
    assert [
        (r["page_url"], str(r["date"]), r["view_count"], r["unique_visitors"]) for r in rows
    ] == [("/test-page", "2024-01-15", 10, 5)]
    hourly = _view(live.client, "va_pageview_hourly")
    assert [(r["view_count"], r["unique_visitors"]) for r in hourly] == [(10, 5)]
    assert wait_for(lambda: nats_client.settled(live.nats.url))


def test_event_ids_come_from_stream_sequence_so_a_republish_counts_again(live):
    # Two identical messages are two page views (two loads of the page); the
    # sequence-derived id tells them apart, and tells a redelivery from either.
    nats_client.publish(live.nats.url, _seed_events(1) * 2)
    assert wait_for(lambda: _count(live.client) == 2, timeout=20)
    ids = sorted(r["event_id"] for r in _view(live.client, "va_pageview_event"))
    assert ids == [nats_client.default_id(live.nats.url, seq) for seq in (1, 2)]
    # A sender-supplied event_id is the dedupe key, across messages.
    dup = {**_seed_events(1)[0], "event_id": "e-1"}
    nats_client.publish(live.nats.url, [dup, dup])
    assert wait_for(lambda: nats_client.settled(live.nats.url), timeout=20)
    assert _count(live.client) == 3


def test_poison_messages_go_to_dead_letters_with_their_reason(live):
    good = _seed_events(4)
    poison = [
        b"this is not json",
        {"session_id": "s", "timestamp": "2024-01-15T10:00:00Z"},  # no page_url
        {"session_id": "s", "page_url": "/a", "timestamp": "next tuesday"},
        b"[1, 2, 3]",
        {"session_id": {"nested": 1}, "page_url": "/a", "timestamp": "2024-01-15T10:00:00Z"},
        b'{"session_id": "s", "page_url": "\\ud800", "timestamp": "2024-01-15T10:00:00Z"}',
        {"session_id": "s", "page_url": "/a", "timestamp": "2024-01-15", "duration_s": 10**400},
        {"session_id": "s", "page_url": "/a", "timestamp": "2024-01-15",
         "properties": '{"a": "\\ud800"}'},  # DuckDB refused it mid-commit, PostgreSQL not
    ]  # fmt: skip
    nats_client.publish(live.nats.url, [good[0], *poison[:3], good[1], *poison[3:], *good[2:]])
    assert wait_for(lambda: nats_client.settled(live.nats.url), timeout=20)
    assert _count(live.client) == 4  # the good ones, none lost to their neighbours
    dead = nats_client.messages(live.nats.url, "events.dead.pageview")
    reasons = [m.headers["Flightdeck-Reason"] for m in dead]
    assert len(reasons) == 8, reasons
    assert reasons[0].startswith("not JSON")
    assert "missing 'page_url'" in reasons[1]
    assert "[timestamp] timestamp" in reasons[2] and "next tuesday" in reasons[2]
    assert "not a JSON object" in reasons[3]
    assert "[type] session_id" in reasons[4] and "not dict" in reasons[4]
    assert "not convertible to Arrow" in reasons[5] and "surrogates" in reasons[5]
    assert reasons[6] == "'duration_s' is out of range for a float"
    assert reasons[7].startswith("[text] properties") and "lone surrogate" in reasons[7]
    assert dead[0].data == b"this is not json"  # the original payload, for inspection or replay
    assert {m.headers["Flightdeck-Subject"] for m in dead} == {"events.pageview"}


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_arrow_ipc_payloads_are_ingested_and_bad_ones_dead_lettered(live):
    table = pa.table(
        {
            "session_id": ["a", "a", "b"],
            "page_url": ["/x", "/y", "/x"],
            "recorded_at": pa.array([0, 60_000_000, 0], pa.timestamp("us", "UTC")),
            "user_id": pa.array([7, 7, None], pa.int64()),
        }
    )
    bad = pa.table({"session_id": ["a"], "page_url": ["/x"], "recorded_at": ["soon"]})
    nats_client.publish(live.nats.url, [_ipc(table), _ipc(bad)])
    assert wait_for(lambda: nats_client.settled(live.nats.url), timeout=20)
    events = sorted(_view(live.client, "va_pageview_event"), key=lambda r: r["event_id"])
    first = nats_client.default_id(live.nats.url, 1)
    assert [(e["event_id"], e["page_url"], e["user_id"]) for e in events] == [
        (f"{first}:0", "/x", "7"),
        (f"{first}:1", "/y", "7"),
        (f"{first}:2", "/x", None),
    ]
    (dead,) = nats_client.messages(live.nats.url, "events.dead.pageview")
    assert "[timestamp]" in dead.headers["Flightdeck-Reason"]
    assert "row 0" in dead.headers["Flightdeck-Reason"]


def _epoch_us(year: int) -> int:
    """`year`-01-01 in microseconds since 1970, past what Python's datetime can hold too."""

    def days_before(y: int) -> int:  # proleptic Gregorian, from 0001-01-01
        return 365 * (y - 1) + (y - 1) // 4 - (y - 1) // 100 + (y - 1) // 400

    return (days_before(year) - days_before(1970)) * 86_400_000_000


def _arrow_event(column: str, value, type_: pa.DataType) -> bytes:
    event = {"session_id": ["s"], "page_url": ["/a"], "recorded_at": ["2024-01-15T10:00:00Z"]}
    event[column] = pa.array([value], type_)
    return _ipc(pa.table(event))


def _publish_between(url: str, good: list, bad: list) -> None:
    """Each bad message after a good one, so every bad one has good neighbours."""
    mixed = [m for pair in zip(good, bad, strict=True) for m in pair]
    nats_client.publish(url, mixed)
    assert wait_for(lambda: nats_client.settled(url), timeout=20)


def _assert_dead_lettered_by_rule(url: str, poison: list[tuple]) -> None:
    """Exactly the bad messages (every second one) were dead-lettered, each with a
    reason naming its (message, column, rule)'s rule and column."""
    dead = nats_client.messages(url, "events.dead.pageview")
    reasons = {int(m.headers["Flightdeck-Sequence"]): m.headers["Flightdeck-Reason"] for m in dead}
    assert sorted(reasons) == list(range(2, 2 * len(poison) + 1, 2)), reasons
    for number, (_, column, rule) in enumerate(poison):
        reason = reasons[2 * number + 2]
        assert f"[{rule}]" in reason and column in reason, (number, reason)


def test_values_that_poison_clients_are_dead_lettered_not_retried(live):
    # Issue 14, item 10. Before, these were stored (and then crashed clients), or
    # PostgreSQL refused the commit and the whole batch was redelivered forever.
    def event(**values: object) -> dict:
        return {"session_id": "s", "page_url": "/a", "timestamp": "2024-01-15T10:00:00Z", **values}

    def raw(duration: str) -> bytes:
        return json.dumps(event()).encode()[:-1] + f', "duration_s": {duration}}}'.encode()

    poison = [  # (message, column, rule)
        # The reason uses the sender's words: `timestamp`, the seed's name for recorded_at.
        (event(timestamp="2300-01-01T00:00:00Z"), "timestamp", "timestamp"),
        (event(recorded_at="1969-12-31T23:59:59Z", timestamp=None), "recorded_at", "timestamp"),
        (raw("NaN"), "duration_s", "finite"),
        (raw("1e999"), "duration_s", "finite"),
        (raw("-Infinity"), "duration_s", "finite"),
        (event(duration_s=-3), "duration_s", "non-negative"),
        (event(session_id="s\x00x"), "session_id", "text"),
        (event(user_pk="u\x00"), "user_pk", "text"),
        (event(referrer="\x00"), "referrer", "text"),
        (event(properties={"k": "\x00"}), "properties", "text"),
        (event(properties='{"k": 1'), "properties", "json"),  # JSON text, but broken
        (event(properties=[1, 2]), "properties", "type"),
        (event(page_url="/" + "x" * 2048), "page_url", "length"),
        (event(event_id="e" * 257), "event_id", "length"),
        (_arrow_event("recorded_at", 1_000_000_000_000, pa.timestamp("s")), "recorded_at",
         "timestamp"),  # the year 33658
        (_arrow_event("recorded_at", _epoch_us(287168) // 1000, pa.timestamp("ms", "UTC")),
         "recorded_at", "timestamp"),
        (_arrow_event("recorded_at", _epoch_us(2262) * 1000, pa.timestamp("ns", "+01:00")),
         "recorded_at", "timestamp"),
        (_arrow_event("duration_s", float("nan"), pa.float64()), "duration_s", "finite"),
        (_arrow_event("page_url", "/\x00", pa.string()), "page_url", "text"),
    ]  # fmt: skip
    good = _seed_events(len(poison))
    _publish_between(live.nats.url, good, [message for message, _, _ in poison])
    assert _count(live.client) == len(good)  # none lost to a poisoned neighbour
    _assert_dead_lettered_by_rule(live.nats.url, poison)


def test_changed_rows_are_published_after_each_commit(live):
    nats_client.publish(live.nats.url, _seed_events(10))
    assert wait_for(lambda: _count(live.client) == 10, timeout=20)

    def updates() -> list:
        return nats_client.messages(live.nats.url, "analytics.aggregate.updated", timeout=0.3)

    assert wait_for(lambda: len(updates()) == 2, timeout=10)
    by_view = {m.headers["Flightdeck-View"]: m for m in updates()}
    daily = pa.ipc.open_stream(by_view["va_pageview_aggregate"].data).read_all()
    assert daily.to_pylist() == _view(live.client, "va_pageview_aggregate")
    version = by_view["va_pageview_aggregate"].headers["Flightdeck-Version"]
    assert daily.column("version").to_pylist() == [int(version)]
    hourly = pa.ipc.open_stream(by_view["va_pageview_hourly"].data).read_all()
    assert hourly.to_pylist() == _view(live.client, "va_pageview_hourly")
    with live.store.read_internal("SELECT count(*) AS n FROM tb_aggregate_outbox") as reader:
        assert reader.read_all().column("n").to_pylist() == [0]


def test_a_doput_commit_is_published_too(live):
    table = pa.table({"session_id": ["s"], "page_url": ["/p"], "recorded_at": ["2024-02-01"]})
    writer, meta = live.client.do_put(
        flight.FlightDescriptor.for_path("events", "pageview"), table.schema
    )
    writer.write_table(table)
    writer.done_writing()
    meta.read()
    writer.close()

    def views() -> set:
        found = nats_client.messages(live.nats.url, "analytics.aggregate.updated", timeout=0.3)
        return {m.headers["Flightdeck-View"] for m in found}

    assert wait_for(lambda: views() == {"va_pageview_aggregate", "va_pageview_hourly"}, timeout=10)


class _Crash(Exception):
    """Stands for the process dying: raised where the acks would go out."""


class _CrashBeforeAck(IngestWorker):
    async def _acknowledge(self, messages) -> None:
        raise _Crash


def test_a_worker_killed_between_commit_and_ack_changes_nothing(store, nats_server, tmp_path):
    options = Settings(ingest_batch=100, ingest_wait_ms=50, ingest_ack_wait=1.0).worker_options()

    async def crash_after_commit() -> None:
        nc = await nats.connect(nats_server.url)
        worker = _CrashBeforeAck(store, nc, options)
        sub = await worker._subscribe()  # creates the stream and the durable consumer
        for event in _seed_events(10):
            await nc.jetstream().publish("events.pageview", json.dumps(event).encode())
        with pytest.raises(_Crash):
            await worker.handle(await worker._collect(sub))
        await nc.close()  # the connection dies with the process; nothing was acked

    asyncio.run(crash_after_commit())
    settings = Settings(port=0, data_dir=tmp_path, raw_retention_days=0)
    server = FlightdeckServer(settings, store)
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    try:
        assert _count(client) == 10  # committed before the "crash"
        assert nats_client.consumer(nats_server.url).num_ack_pending == 10

        async def restart_worker() -> None:
            nc = await nats.connect(nats_server.url)
            task = asyncio.create_task(IngestWorker(store, nc, options).run())
            for _ in range(100):
                info = await nc.jetstream().consumer_info("EVENTS", "flightdeck-ingest")
                if info.num_ack_pending == 0 and info.num_redelivered == 0:
                    break
                await asyncio.sleep(0.1)
            task.cancel()
            await nc.close()

        asyncio.run(restart_worker())
        info = nats_client.consumer(nats_server.url)
        assert info.num_ack_pending == 0 and info.num_pending == 0
        assert info.delivered.consumer_seq >= 20  # every message was delivered twice
        assert _count(client) == 10
        (row,) = _view(client, "va_pageview_aggregate")
        assert (row["view_count"], row["unique_visitors"]) == (10, 5)
    finally:
        client.close()
        server.shutdown()


def test_worker_carries_on_after_nats_restarts(store, tmp_path):
    nats_dir = tmp_path / "nats"
    first = NatsProcess(nats_dir).start()
    port = first.port
    settings = Settings(port=0, data_dir=tmp_path, ingest_wait_ms=20, raw_retention_days=0)
    background = Background(settings, store, first.url, worker=True).start()
    assert background.wait_ready(10)
    server = FlightdeckServer(settings, store, committed=background.committed)
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    second = None
    try:
        nats_client.publish(first.url, _seed_events(5))
        assert wait_for(lambda: _count(client) == 5, timeout=20)
        first.stop()
        second = NatsProcess(nats_dir, port=port).start()  # same port, same JetStream store
        nats_client.publish(second.url, _seed_events(5, page="/after-restart"))
        assert wait_for(lambda: _count(client) == 10, timeout=30)
    finally:
        client.close()
        server.shutdown()
        background.stop()
        if second is not None:
            second.stop()
        first.stop()


def test_json_properties_and_optional_fields_arrive_intact(live):
    event = {
        **_seed_events(1)[0],
        "event_id": "with-extras",
        "referrer": "https://example.com/",
        "user_agent": "Mozilla/5.0",
        "duration_s": 12.5,
        "properties": {"ab": "variant-b", "n": 3},
    }
    nats_client.publish(live.nats.url, [event])
    assert wait_for(lambda: _count(live.client) == 1, timeout=20)
    (row,) = _view(live.client, "va_pageview_event")
    assert (row["referrer"], row["user_agent"], row["duration_s"], row["user_id"]) == (
        "https://example.com/",
        "Mozilla/5.0",
        12.5,
        "2",
    )
    assert json.loads(row["properties"]) == {"ab": "variant-b", "n": 3}


def test_commits_made_while_no_publisher_ran_are_published_later(store, nats_server, tmp_path):
    # The process died after commit, before publishing: the outbox still holds it.
    table = pa.table({"session_id": ["s"], "page_url": ["/p"], "recorded_at": ["2024-02-01"]})
    version = ingest(store, table.to_batches()).version
    settings = Settings(data_dir=tmp_path, raw_retention_days=0)

    def found() -> list:
        return nats_client.messages(nats_server.url, "analytics.aggregate.updated", timeout=0.3)

    background = Background(settings, store, nats_server.url, worker=False).start()
    try:
        assert background.wait_ready(10)
        assert wait_for(lambda: len(found()) == 2, timeout=10)
    finally:
        background.stop()
    assert {m.headers["Flightdeck-Version"] for m in found()} == {str(version)}
    with store.read_internal("SELECT count(*) AS n FROM tb_aggregate_outbox") as reader:
        assert reader.read_all().column("n").to_pylist() == [0]  # sent, so not sent again


def test_republishing_a_version_is_dropped_by_jetstream(store, nats_server, tmp_path):
    table = pa.table({"session_id": ["s"], "page_url": ["/p"], "recorded_at": ["2024-02-01"]})
    version = ingest(store, table.to_batches()).version

    async def publish_twice() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await ensure_stream(js, AGGREGATES)
        for update in updates_for(store, version) * 2:  # as after a crash before the delete
            await js.publish(AGGREGATE_SUBJECT, update.payload, headers=update.headers)
        await nc.close()

    asyncio.run(publish_twice())
    assert len(nats_client.messages(nats_server.url, AGGREGATE_SUBJECT, timeout=0.3)) == 2


def _fast_publish(url: str, payloads: list[bytes]) -> None:
    """Core-NATS publishes into the stream, as a busy producer sends: a backlog at once."""

    async def go() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        before = (await js.stream_info("EVENTS")).state.last_seq
        for p in payloads:
            await nc.publish("events.pageview", p)
        await nc.flush()
        # Core publishes reach the stream a moment after the flush: until all are
        # stored, a consumer with nothing pending is no sign that the worker is done.
        while (await js.stream_info("EVENTS")).state.last_seq < before + len(payloads):
            await asyncio.sleep(0.01)
        await nc.close()

    asyncio.run(go())


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_a_backlog_in_many_batches_counts_each_event_once_and_dead_letters_one(
    store, nats_server, tmp_path
):
    # Several batches in flight at once (fetched, decoded, committing, acking), read in
    # bulk, with one poison message in the middle of a batch.
    events = [
        json.dumps({**e, "user_pk": i}).encode()
        for i, e in enumerate(_seed_events(60) * 20)  # 1,200 page views, 5 sessions
    ]
    events[611] = b'{"session_id": "s", "page_url": "/test-page", "timestamp": ,}'
    settings = Settings(
        port=0, data_dir=tmp_path, ingest_batch=100, ingest_wait_ms=20, raw_retention_days=0
    )
    background = Background(settings, store, nats_server.url, worker=True).start()
    server = FlightdeckServer(settings, store, committed=background.committed)
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    try:
        assert background.wait_ready(10)
        _fast_publish(nats_server.url, events)
        assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=60)
        (row,) = _view(client, "va_pageview_aggregate")
        assert (row["view_count"], row["unique_visitors"]) == (1199, 5)
        (dead,) = nats_client.messages(nats_server.url, "events.dead.pageview")
        assert dead.headers["Flightdeck-Sequence"] == "612"
        assert dead.headers["Flightdeck-Reason"].startswith("not JSON")
        ids = {r["event_id"] for r in _view(client, "va_pageview_event")}
        first, poison = (nats_client.default_id(nats_server.url, seq) for seq in (1, 612))
        assert len(ids) == 1199 and poison not in ids and first in ids
    finally:
        client.close()
        server.shutdown()
        background.stop()


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_an_existing_consumer_is_used_as_it_is(store, nats_server, tmp_path):
    # Made earlier (by an older flightdeck, or an operator) with a small ack-pending
    # limit: the worker keeps it, fits its batches under it, and loses nothing.
    async def make_consumer() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await ensure_stream(js, EVENTS)
        await nats_client.add_old_consumer(js, max_ack_pending=8, ack_wait=30.0)
        await nc.close()

    asyncio.run(make_consumer())
    _fast_publish(nats_server.url, [json.dumps(e).encode() for e in _seed_events(50)])
    settings = Settings(port=0, data_dir=tmp_path, ingest_wait_ms=20, raw_retention_days=0)
    background = Background(settings, store, nats_server.url, worker=True).start()
    server = FlightdeckServer(settings, store, committed=background.committed)
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    try:
        assert background.wait_ready(10)
        assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=30)
        assert _count(client) == 50
        info = nats_client.consumer(nats_server.url)
        assert (info.config.max_ack_pending, info.config.ack_wait) == (8, 30.0)
    finally:
        client.close()
        server.shutdown()
        background.stop()


def _streams(url: str, action) -> None:
    async def go() -> None:
        nc = await nats.connect(url)
        await action(nc.jetstream())
        await nc.close()

    asyncio.run(go())


def _ids(client) -> list[str]:
    return sorted(r["event_id"] for r in _view(client, "va_pageview_event"))


def test_a_stream_recreated_under_a_running_store_counts_every_new_event(live):
    # Sequences restart at 1 in a new EVENTS stream: ids from the sequence alone
    # would make every new event a "duplicate" of an old one, dropped unseen.
    url = live.nats.url
    nats_client.publish(url, _seed_events(3))
    nats_client.publish(url, _seed_events(1, "/sent-once"), headers={"Nats-Msg-Id": "m-1"})
    assert wait_for(lambda: _count(live.client) == 4, timeout=20)
    _streams(url, lambda js: js.delete_stream(EVENTS.name))
    assert wait_for(lambda: nats_client.settled(url), timeout=20)  # the worker made it anew
    nats_client.publish(url, _seed_events(2, "/after"))
    # The sender's Nats-Msg-Id is its event_id: a re-send to the new stream is one view.
    nats_client.publish(url, _seed_events(1, "/sent-once"), headers={"Nats-Msg-Id": "m-1"})
    assert wait_for(lambda: nats_client.settled(url), timeout=20)
    assert wait_for(lambda: _count(live.client) == 6, timeout=20), _ids(live.client)
    ids = _ids(live.client)
    assert "m-1" in ids and len(set(ids)) == 6
    # Every message of the new stream delivered again (a new consumer reads from the
    # start): each one a duplicate, nothing counted twice.
    _streams(url, lambda js: js.delete_consumer(EVENTS.name, "flightdeck-ingest"))
    assert wait_for(lambda: nats_client.settled(url), timeout=20)
    assert nats_client.consumer(url).delivered.stream_seq == 3
    assert _ids(live.client) == ids


def test_a_fresh_nats_under_the_same_store_counts_every_new_event(store, tmp_path):
    # Serve with one NATS, then the same store with another, fresh one (--nats B, or
    # the embedded NATS's store lost): its sequences start again at 1.
    settings = Settings(port=0, data_dir=tmp_path, ingest_wait_ms=20, raw_retention_days=0)
    server = FlightdeckServer(settings, store)
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    try:
        _serve_on_new_nats(settings, store, tmp_path / "nats-a", _seed_events(3, "/first"))
        assert _count(client) == 3
        _serve_on_new_nats(settings, store, tmp_path / "nats-b", _seed_events(2, "/second"))
        assert wait_for(lambda: _count(client) == 5, timeout=20), _ids(client)
    finally:
        client.close()
        server.shutdown()


def _serve_on_new_nats(settings, store, nats_dir, events: list[dict]) -> None:
    """Run the worker on a fresh nats-server until `events`, published there, are acked."""
    with NatsProcess(nats_dir) as nats_server:
        background = Background(settings, store, nats_server.url, worker=True).start()
        try:
            assert background.wait_ready(10)
            nats_client.publish(nats_server.url, events)
            assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=20)
        finally:
            background.stop()


def test_nats_msg_id_is_the_event_id_unless_the_event_has_its_own(live):
    table = pa.table({"session_id": ["a", "b"], "page_url": ["/x", "/y"], "recorded_at": [0, 0]})
    table = table.set_column(2, "recorded_at", table["recorded_at"].cast(pa.timestamp("us")))
    nats_client.publish(live.nats.url, _seed_events(1), headers={"Nats-Msg-Id": "m-1"})
    own = {**_seed_events(1)[0], "event_id": "e-own"}
    nats_client.publish(live.nats.url, [own], headers={"Nats-Msg-Id": "m-2"})
    headers = {"Nats-Msg-Id": "m-3", "Content-Type": "application/vnd.apache.arrow.stream"}
    nats_client.publish(live.nats.url, [_ipc(table)], headers=headers)
    assert wait_for(lambda: _count(live.client) == 4, timeout=20)
    assert _ids(live.client) == ["e-own", "m-1", "m-3:0", "m-3:1"]


def test_empty_texts_and_non_integer_ids_are_dead_lettered_like_doput_refuses_them(live):
    # Issue 15, item 5: one rule for both entry points (tests/ingest/test_doput.py).
    def event(**values: object) -> dict:
        return {"session_id": "s", "page_url": "/a", "timestamp": "2024-01-15T10:00:00Z", **values}

    poison = [  # (message, column, rule)
        (event(page_url=""), "page_url", "not-empty"),
        (event(page_url=" \t"), "page_url", "not-empty"),
        (event(session_id=""), "session_id", "not-empty"),
        (event(session_id="  "), "session_id", "not-empty"),
        (event(session_id=1.5), "session_id", "type"),
        (event(session_id=2.0), "session_id", "type"),
        (event(session_id=True), "session_id", "type"),
        (event(user_pk=1.5), "user_id", "type"),
        (_arrow_event("session_id", 1.5, pa.float64()), "session_id", "type"),
        (_arrow_event("page_url", "", pa.string()), "page_url", "not-empty"),
    ]
    good = [event(session_id=7, page_url=f"/int-{i}") for i in range(len(poison))]
    _publish_between(live.nats.url, good, [message for message, _, _ in poison])
    stored = _view(live.client, "va_pageview_event")
    assert len(stored) == len(good) and {r["session_id"] for r in stored} == {"7"}
    _assert_dead_lettered_by_rule(live.nats.url, poison)


def test_properties_sent_as_json_text_count_as_over_doput(live):
    # Issue 15, item 5: the README says JSON text; NATS dead-lettered text before.
    base = _seed_events(2)
    text = {**base[0], "event_id": "as-text", "properties": '{"ab": "variant-a", "n": [1, 2]}'}
    obj = {**base[1], "event_id": "as-object", "properties": {"ab": "variant-a", "n": [1, 2]}}
    nats_client.publish(live.nats.url, [text, obj])
    assert wait_for(lambda: nats_client.settled(live.nats.url), timeout=20)
    assert nats_client.messages(live.nats.url, "events.dead.pageview") == []
    rows = {r["event_id"]: r for r in _view(live.client, "va_pageview_event")}
    assert {k: json.loads(r["properties"]) for k, r in rows.items()} == {
        "as-text": {"ab": "variant-a", "n": [1, 2]},
        "as-object": {"ab": "variant-a", "n": [1, 2]},
    }


# Issue 15, item 2: one message the store refuses blocked its whole batch forever
# (PostgreSQL: "index row size exceeds maximum"), the good events never counted.
_TAKEN = "https://taken.example/"


def _refusing_store(store) -> None:
    """Make the store itself refuse some values that pass every ingest rule, as an
    operator's index can: a unique index (both backends) and, on PostgreSQL, a btree
    whose rows can outgrow the page (values within limits, together too long)."""
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX ux_test_referrer ON tb_pageview_event (referrer)")
        if store.backend == "postgresql":
            cursor.execute("CREATE INDEX ix_test_wide ON tb_pageview_event (page_url, user_agent)")
        conn.commit()
    ingest(store, [pa.RecordBatch.from_pylist([_event(0, referrer=_TAKEN)])])


def _event(i: int, **values: object) -> dict:
    return {"session_id": f"s{i}", "page_url": "/p", "timestamp": "2024-01-15T10:00:00Z",
            "event_id": f"e{i}", **values}  # fmt: skip


def _random_text(n: int, seed: int) -> str:
    import random
    import string

    pick = random.Random(seed).choice
    return "/" + "".join(pick(string.ascii_letters + string.digits) for _ in range(n))


def test_a_message_the_store_refuses_is_dead_lettered_and_its_batch_commits(live):
    _refusing_store(live.store)
    refused = [_event(100, referrer=_TAKEN)]  # a duplicate under the unique index
    wide = _event(101, page_url=_random_text(2000, 1), user_agent=_random_text(1000, 2))
    if live.store.backend == "postgresql":
        refused.append(wide)  # its index row is over PostgreSQL's 2,704 bytes
    good = [_event(i) for i in range(1, 21)]
    messages = good[:7] + refused[:1] + good[7:14] + refused[1:] + good[14:]
    nats_client.publish(live.nats.url, messages)
    assert wait_for(lambda: nats_client.settled(live.nats.url), timeout=20)
    stored = {row["event_id"] for row in _view(live.client, "va_pageview_event")}
    assert stored - {"e0"} == {e["event_id"] for e in good}
    dead = nats_client.messages(live.nats.url, "events.dead.pageview")
    refused_at = sorted(messages.index(e) + 1 for e in refused)  # stream sequences
    assert sorted(int(m.headers["Flightdeck-Sequence"]) for m in dead) == refused_at
    for message in dead:
        reason = message.headers["Flightdeck-Reason"]
        assert reason.startswith("[store]") and live.store.backend in reason, reason
    daily = _view(live.client, "va_pageview_aggregate")
    assert sum(r["view_count"] for r in daily) == len(stored)  # each counted once


@pytest.mark.slow  # a long run (processes, waits): make test runs it
def test_a_store_that_fails_every_batch_keeps_them_for_later_and_dead_letters_none(live):
    # Not the messages' fault (a table gone, the store away): redelivered, never dead-lettered.
    with live.store.write() as conn, conn.cursor() as cursor:
        cursor.execute("ALTER TABLE tb_aggregate_outbox RENAME TO tb_test_outbox_away")
        conn.commit()
    nats_client.publish(live.nats.url, [_event(i) for i in range(5)])
    assert wait_for(lambda: nats_client.consumer(live.nats.url).num_redelivered > 0, timeout=20)
    with live.store.write() as conn, conn.cursor() as cursor:
        cursor.execute("ALTER TABLE tb_test_outbox_away RENAME TO tb_aggregate_outbox")
        conn.commit()
    assert wait_for(lambda: nats_client.settled(live.nats.url), timeout=20)
    assert _count(live.client) == 5
    assert nats_client.messages(live.nats.url, "events.dead.pageview") == []


def test_a_failed_first_follow_of_the_update_log_is_retried(store, nats_server, tmp_path, caplog):
    """Right after a restart a JetStream request may time out; the hub's follow is tried
    again (and said), rather than leaving ingest and live updates silently unstarted."""
    settings = Settings(data_dir=tmp_path, raw_retention_days=0)
    background = Background(settings, store, nats_server.url, worker=True)
    follow, tries = background.hub.follow, []

    async def flaky_follow(js):
        tries.append(1)
        if len(tries) == 1:
            raise TimeoutError("nats: timeout")
        await follow(js)

    background.hub.follow = flaky_follow
    with caplog.at_level("WARNING", logger="flightdeck.background"):
        background.start()
        try:
            assert background.wait_ready(20), "the update log was never followed"
        finally:
            background.stop()
    assert len(tries) == 2
    assert "cannot follow the update log yet" in caplog.text
