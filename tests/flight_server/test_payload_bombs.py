"""Decompression bombs through every Flight path that decodes a client's Arrow data.

A zstd IPC stream of a gigabyte of zeros is 33 KB. Ticket and handle
parameters are raw bytes: their decoded size is read from the IPC metadata and
refused before anything is decoded, so memory stays flat. DoPut streams are
decoded by pyarrow's C++ reader one message at a time before Python sees them:
there the put is refused on the first message over its limit, so memory holds
one message, never the whole stream. Each test checks the typed refusal, the
server's peak memory, and that the server keeps serving.
"""

from __future__ import annotations

import base64
import json

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.flight_sql import messages as pb
from flightdeck.flight_server.flight_sql.commands import pack
from google.protobuf import any_pb2

from tests.ipc_bombs import MiB, bomb_batch, compressed_stream, event_bomb, peak_growth_mb

GiB = 1024 * MiB
QUERY = "SELECT page_url FROM va_pageview_aggregate WHERE page_url = ?"
ZSTD = flight.FlightCallOptions(write_options=pa.ipc.IpcWriteOptions(compression="zstd"))


@pytest.fixture(scope="module")
def gigabyte_bomb() -> str:
    """A 1 GiB parameter batch as the base64 text tickets and handles carry (~44 KB)."""
    stream = compressed_stream([bomb_batch(GiB)])
    assert len(stream) < 64 * 1024
    return base64.b64encode(stream).decode()


def _serves(client: flight.FlightClient) -> bool:
    table = client.do_get(flight.Ticket(b"va_pageview_aggregate")).read_all()
    return table.num_rows == 0


def _cmd(message) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(pack(message))


def _prepare(client: flight.FlightClient, sql: str) -> bytes:
    request = pack(pb.ActionCreatePreparedStatementRequest(query=sql))
    result = next(iter(client.do_action(flight.Action("CreatePreparedStatement", request))))
    created = any_pb2.Any.FromString(result.body.to_pybytes())
    return pb.ActionCreatePreparedStatementResult.FromString(
        created.value
    ).prepared_statement_handle


def test_ticket_parameters_are_bounded_before_decoding(client, gigabyte_bomb):
    ticket = flight.Ticket(json.dumps({"v": 1, "sql": QUERY, "params": gigabyte_bomb}).encode())
    with peak_growth_mb() as growth:
        with pytest.raises(pa.ArrowInvalid, match=r"\[parameter-size\].*--max-parameter-mb"):
            client.do_get(ticket).read_all()
    assert growth[0] < 100, f"the server grew {growth[0]:.0f} MB decoding a refused ticket"
    assert _serves(client)


def test_handle_parameters_are_bounded_before_decoding(client, gigabyte_bomb):
    handle = json.loads(_prepare(client, QUERY))
    forged = json.dumps({**handle, "params": gigabyte_bomb}).encode()
    descriptor = _cmd(pb.CommandPreparedStatementQuery(prepared_statement_handle=forged))
    with peak_growth_mb() as growth:
        with pytest.raises(pa.ArrowInvalid, match=r"\[parameter-size\].*--max-parameter-mb"):
            client.get_flight_info(descriptor)
    assert growth[0] < 100, f"the server grew {growth[0]:.0f} MB decoding a refused handle"
    assert _serves(client)


def test_bound_parameters_by_doput_are_refused_at_the_first_message_over_the_limit(client):
    """Binding reads message by message: the first over the limit ends the put, so the
    server holds one decoded message, not the whole stream and its re-encoded handle."""
    handle = _prepare(client, QUERY)
    message = bomb_batch(256 * MiB)
    descriptor = _cmd(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle))
    with peak_growth_mb() as growth:
        with pytest.raises(pa.ArrowInvalid, match=r"\[parameter-size\].*--max-parameter-mb"):
            writer, reader = client.do_put(descriptor, message.schema, options=ZSTD)
            for _ in range(4):  # 1 GiB decoded in all
                writer.write_batch(message)
            writer.done_writing()
            reader.read()
            writer.close()
    # One message (256 MB) is decoded by pyarrow's C++ reader before Python can look.
    assert growth[0] < 600, f"the server grew {growth[0]:.0f} MB binding refused parameters"
    assert _serves(client)


@pytest.mark.parametrize(
    "descriptor",
    [
        flight.FlightDescriptor.for_path("events", "pageview"),
        _cmd(pb.CommandStatementIngest(table="tb_pageview_event")),
    ],
    ids=["doput", "flight-sql-ingest"],
)
def test_put_batches_are_bounded_on_decoded_bytes(store, tmp_path, descriptor):
    settings = Settings(port=0, data_dir=tmp_path, max_put_batch_mb=8)
    server = FlightdeckServer(settings, store)
    message = event_bomb(256 * MiB)
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            with peak_growth_mb() as growth:
                with pytest.raises(pa.ArrowInvalid, match=r"\[batch-size\].*--max-put-batch-mb"):
                    writer, reader = client.do_put(descriptor, message.schema, options=ZSTD)
                    for _ in range(4):
                        writer.write_batch(message)
                    writer.done_writing()
                    reader.read()
                    writer.close()
            assert growth[0] < 600, f"the server grew {growth[0]:.0f} MB on a refused put"
            assert _serves(client)
            with store.read_internal("SELECT count(*) AS n FROM tb_pageview_event") as rows:
                assert rows.read_all().column("n").to_pylist() == [0]
    finally:
        server.shutdown()


def _row_bomb(rows: int) -> pa.RecordBatch:
    """Rows without bytes: null-typed columns claim any length at no size."""
    names = ["session_id", "page_url", "recorded_at"]
    return pa.record_batch([pa.nulls(rows)] * 3, names=names)


def test_put_batches_count_their_rows_not_only_their_bytes(client):
    batch = _row_bomb(50_000_000)
    assert batch.nbytes == 0
    descriptor = flight.FlightDescriptor.for_path("events", "pageview")
    with peak_growth_mb() as growth:
        with pytest.raises(pa.ArrowInvalid, match=r"\[batch-size\].*50000000 rows"):
            writer, reader = client.do_put(descriptor, batch.schema)
            writer.write_batch(batch)
            writer.done_writing()
            reader.read()
            writer.close()
    assert growth[0] < 100, f"the server grew {growth[0]:.0f} MB on a refused put"
    assert _serves(client)
