"""NATS messages counted on their decoded size, on both backends with a real nats-server.

A message over --max-message-mb is dead-lettered with reason `payload-size`
before it is decoded, its neighbours are ingested, and a fetched batch is
committed in parts of at most --ingest-batch-mb decoded.
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
from flightdeck.ingest.nats_worker import IngestWorker
from flightdeck.ingest.streams import AGGREGATE_SUBJECT
from flightdeck.ingest.update_signature import SIGNATURE_HEADER, sign

from tests import nats_client
from tests.ipc_bombs import MiB, compressed_stream, event_bomb, peak_growth_mb
from tests.services import wait_for

GiB = 1024 * MiB


def _events(n: int, page: str = "/ok") -> list[dict]:
    return [
        {"session_id": f"s{i}", "page_url": page, "timestamp": f"2024-01-15T10:{i:02d}:00Z"}
        for i in range(n)
    ]


def _bounded(store, nats_server, tmp_path, **limits):
    settings = Settings(
        port=0, data_dir=tmp_path, ingest_wait_ms=20, raw_retention_days=0, **limits
    )
    background = Background(settings, store, nats_server.url, worker=True).start()
    assert background.wait_ready(10)
    server = FlightdeckServer(settings, store)
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    return SimpleNamespace(client=client, server=server, background=background)


@pytest.fixture
def small_messages(store, nats_server, tmp_path):
    live = _bounded(store, nats_server, tmp_path, max_message_mb=0.01)  # 10 KB
    yield live
    live.client.close()
    live.server.shutdown()
    live.background.stop()


@pytest.fixture
def default_limits(store, nats_server, tmp_path):
    live = _bounded(store, nats_server, tmp_path)
    yield live
    live.client.close()
    live.server.shutdown()
    live.background.stop()


def _pages(client) -> list[str]:
    table = client.do_get(flight.Ticket(b"va_pageview_event")).read_all()
    return sorted(table.column("page_url").to_pylist())


def _dead(url: str) -> list:
    return nats_client.messages(url, "events.dead.pageview")


def test_a_json_message_over_the_limit_is_dead_lettered(small_messages, nats_server):
    big = {**_events(1, page="/big")[0], "properties": {"blob": "x" * 20_000}}
    nats_client.publish(nats_server.url, [*_events(2), big, *_events(2)])
    assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=20)
    assert _pages(small_messages.client) == ["/ok"] * 4
    (dead,) = _dead(nats_server.url)
    reason = dead.headers["Flightdeck-Reason"]
    assert reason.startswith("[payload-size]") and "--max-message-mb" in reason, reason
    assert json.loads(dead.data)["page_url"] == "/big"  # kept whole, for inspection


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_an_arrow_bomb_is_dead_lettered_unread(default_limits, nats_server):
    bomb = compressed_stream([event_bomb(GiB)])  # ~33 KB on the wire
    assert len(bomb) < 64 * 1024
    nats_client.publish(nats_server.url, _events(2))
    assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=20)
    with peak_growth_mb() as growth:
        nats_client.publish(nats_server.url, [bomb])
        assert wait_for(lambda: len(_dead(nats_server.url)) == 1, timeout=20)
    assert growth[0] < 100, f"the worker grew {growth[0]:.0f} MB on a refused message"
    nats_client.publish(nats_server.url, _events(2))
    assert wait_for(lambda: nats_client.settled(nats_server.url), timeout=20)
    assert _pages(default_limits.client) == ["/ok"] * 4
    (dead,) = _dead(nats_server.url)
    reason = dead.headers["Flightdeck-Reason"]
    assert reason.startswith("[payload-size]") and "1024.0 MB" in reason, reason
    assert dead.data == bomb


def test_a_fetched_batch_is_committed_in_parts_within_its_decoded_budget(store, nats_server):
    """Five Arrow messages of 3 MB decoded each (tiny compressed), a budget of 8 MB:
    every event is ingested, none dead-lettered, in three commits of at most two."""
    message = compressed_stream([event_bomb(3 * MiB)])
    options = Settings(ingest_batch=100, ingest_wait_ms=200, ingest_batch_mb=8).worker_options()
    commits: list[int] = []

    async def run() -> None:
        nc = await nats.connect(nats_server.url)
        worker = IngestWorker(store, nc, options, on_commit=lambda r: commits.append(r.accepted))
        puller = await worker._subscribe()  # creates the stream and the durable consumer
        for _ in range(5):
            await nc.jetstream().publish("events.pageview", message)
        fetched = await worker._collect(puller)
        assert len(fetched) == 5
        await worker.handle(fetched)
        await puller.close()
        await nc.close()

    asyncio.run(run())
    assert commits == [2, 2, 1]
    assert nats_client.settled(nats_server.url)
    with store.read_internal("SELECT count(*) AS n FROM tb_pageview_event") as reader:
        assert reader.read_all().column("n").to_pylist() == [5]
    assert _dead(nats_server.url) == []


def test_settings_carry_the_nats_limits_to_the_worker():
    settings = Settings(max_message_mb=2, ingest_batch_mb=3, max_deliveries=7)
    options = settings.worker_options()
    assert (options.max_message_bytes, options.batch_bytes, options.max_deliveries) == (
        2 * MiB,
        3 * MiB,
        7,
    )


def test_an_update_bomb_is_skipped_by_the_live_hub_unread(default_limits, nats_server):
    """Every server's hub decodes what arrives on the update log: a bomb published
    there is skipped, not decoded. An unsigned one is dropped before any decoding;
    this one carries a valid signature (a leaked key, say) to show the size bound
    holds on its own."""
    hub = default_limits.background.hub
    bomb = compressed_stream([event_bomb(GiB)])
    headers = {"Flightdeck-View": "va_pageview_aggregate"}
    headers[SIGNATURE_HEADER] = sign(hub._key, AGGREGATE_SUBJECT, headers, bomb)
    with peak_growth_mb() as growth:
        nats_client.publish(nats_server.url, [bomb], subject=AGGREGATE_SUBJECT, headers=headers)
        assert wait_for(lambda: hub.position >= 1, timeout=20)
    assert growth[0] < 100, f"the hub grew {growth[0]:.0f} MB on an update it skips"


def test_an_arrow_message_of_rows_without_bytes_is_dead_lettered(default_limits, nats_server):
    rows = 50_000_000  # null-typed columns: no body at all, yet 400 MB of events to build
    batch = pa.record_batch([pa.nulls(rows)] * 3, names=["session_id", "page_url", "recorded_at"])
    with peak_growth_mb() as growth:
        nats_client.publish(nats_server.url, [compressed_stream([batch])])
        assert wait_for(lambda: len(_dead(nats_server.url)) == 1, timeout=20)
    assert growth[0] < 100, f"the worker grew {growth[0]:.0f} MB on a refused message"
    (dead,) = _dead(nats_server.url)
    assert dead.headers["Flightdeck-Reason"].startswith("[payload-size]")
