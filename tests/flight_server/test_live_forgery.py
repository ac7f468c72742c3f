"""Only flightdeck's own publisher feeds live subscribers, on both backends.

The NATS here is an external one without authentication (anyone may publish
to `analytics.aggregate.updated`): what stands between a forger and a
subscriber is the signature each update carries. Forged updates (unsigned,
signed with another key, a real signature over other rows, a real signature
with a header changed) never reach a subscriber, live or replayed from a
cursor, and are counted; real updates still arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import nats
import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.background import Background
from flightdeck.flight_server.metrics import Metrics
from flightdeck.ingest.streams import AGGREGATE_SUBJECT, AGGREGATES

from tests import nats_client
from tests.services import wait_for

EVENTS = flight.FlightDescriptor.for_path("events", "pageview")
FORGED_COUNT = 999_999_999
REJECTED = "flightdeck_live_updates_rejected_total"
SIGNATURE = "Flightdeck-Signature"


@contextlib.contextmanager
def _server(store, nats_url: str, tmp_path):
    settings = Settings(port=0, data_dir=tmp_path, raw_retention_days=0, heartbeat=0.3)
    metrics = Metrics()
    background = Background(settings, store, nats_url, worker=True, metrics=metrics).start()
    assert background.wait_ready(10)
    server = FlightdeckServer(
        settings, store, committed=background.committed, hub=background.hub, metrics=metrics
    )
    try:
        yield flight.connect(f"grpc://127.0.0.1:{server.port}"), metrics
    finally:
        server.shutdown()
        background.stop()


def _put(client, page: str, session: str) -> None:
    table = pa.table(
        {"session_id": [session], "page_url": [page], "recorded_at": ["2024-01-15T10:00:00Z"]}
    )
    writer, meta = client.do_put(EVENTS, table.schema)
    writer.write_table(table)
    writer.done_writing()
    meta.read()
    writer.close()


def _subscribe(client, **request):
    descriptor = flight.FlightDescriptor.for_command(
        json.dumps({"subscribe": "va_pageview_aggregate", **request}).encode()
    )
    return client.do_exchange(descriptor)


def _leave(writer, reader) -> None:
    reader.cancel()
    with contextlib.suppress(flight.FlightCancelledError):
        writer.close()


def _read_until(reader, page: str, timeout: float = 15.0) -> list[tuple[dict, list[dict]]]:
    """Every message up to and including the first update that carries `page`."""
    out = []
    while True:
        chunk = reader.read_chunk()
        meta = json.loads(chunk.app_metadata.to_pybytes())
        rows = chunk.data.to_pylist() if chunk.data is not None else []
        out.append((meta, rows))
        if meta["type"] == "update" and any(r["page_url"] == page for r in rows):
            return out


def _counts(messages) -> set[int]:
    return {row["view_count"] for _, rows in messages for row in rows}


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _forgeries(real) -> list[tuple[bytes, dict[str, str]]]:
    """Forged updates of every kind, made from a real one (`real`: a NATS message)."""
    table = pa.ipc.open_stream(real.data).read_all()
    # Newer than anything real, so no subscriber holds it already; an inflated count.
    table = _replaced(table, "view_count", FORGED_COUNT)
    forged = _ipc(_replaced(table, "version", 10**12))
    headers = {k: v for k, v in real.headers.items() if k != "Nats-Msg-Id"}
    unsigned = {k: v for k, v in headers.items() if k != SIGNATURE}
    other_key = {**unsigned, SIGNATURE: "v1=" + "00" * 32}
    return [
        (forged, unsigned),  # no signature at all
        (forged, other_key),  # signed with some other key
        (forged, headers),  # a real signature over other rows
        (real.data, {**headers, "Flightdeck-Version": "999999999"}),  # a header changed
    ]


def _replaced(table: pa.Table, column: str, value: int) -> pa.Table:
    kind = table.schema.field(column).type
    return table.set_column(
        table.schema.get_field_index(column), column, pa.array([value] * table.num_rows, kind)
    )


def _publish_raw(url: str, messages: list[tuple[bytes, dict[str, str]]]) -> None:
    async def go() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        for n, (payload, headers) in enumerate(messages):
            headers = {**headers, "Nats-Msg-Id": f"forged-{n}"}
            await js.publish(AGGREGATE_SUBJECT, payload, stream=AGGREGATES.name, headers=headers)
        await nc.close()

    asyncio.run(go())


def _rejected(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value(REJECTED) or 0.0


def test_forged_updates_never_reach_a_subscriber_while_real_ones_do(store, nats_server, tmp_path):
    with _server(store, nats_server.url, tmp_path) as (client, metrics):
        _put(client, "/x", "first")
        assert wait_for(lambda: nats_client.messages(nats_server.url, AGGREGATE_SUBJECT, 0.3), 10)
        real = next(
            m
            for m in nats_client.messages(nats_server.url, AGGREGATE_SUBJECT, 0.3)
            if m.headers["Flightdeck-View"] == "va_pageview_aggregate"
        )
        writer, reader = _subscribe(client)
        snapshot = _read_until_type(reader, "snapshot_end")
        cursor = snapshot[-1][0]["cursor"]
        forgeries = _forgeries(real)
        _publish_raw(nats_server.url, forgeries)
        _put(client, "/after", "second")  # a real update, published after the forgeries
        live = _read_until(reader, "/after")
        assert FORGED_COUNT not in _counts(live), live
        assert _rejected(metrics) == len(forgeries)
        _leave(writer, reader)

        # A subscriber resuming from before the forgeries replays the log: same rule.
        writer, reader = _subscribe(client, snapshot=False, cursor=cursor)
        replayed = _read_until(reader, "/after")
        assert FORGED_COUNT not in _counts(replayed), replayed
        assert _rejected(metrics) >= 2 * len(forgeries)
        _leave(writer, reader)
        client.close()


def _read_until_type(reader, kind: str) -> list[tuple[dict, list[dict]]]:
    out = []
    while not out or out[-1][0]["type"] != kind:
        chunk = reader.read_chunk()
        out.append((json.loads(chunk.app_metadata.to_pybytes()), []))
    return out
