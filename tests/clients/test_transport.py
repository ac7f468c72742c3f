"""What the client sends and follows, checked with small purpose-built Flight servers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import flightdeck
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server.descriptors import PutStream


class _Headers(flight.ServerMiddlewareFactory):
    """Records the authorization header of every call, by method."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[str]]] = []

    def start_call(self, info, headers):
        self.seen.append((str(info.method), headers.get("authorization", [])))


class _Shard(flight.FlightServerBase):
    """Serves tickets b"a", b"b", ... as one-column tables; GetFlightInfo spreads a query
    over an endpoint without a location (this server) and one on `other`."""

    def __init__(self, other: str | None = None) -> None:
        self.headers = _Headers()
        super().__init__("grpc://127.0.0.1:0", middleware={"headers": self.headers})
        self.other = other
        self.put: list[pa.Table] = []

    def get_flight_info(self, context, descriptor):
        endpoints = [flight.FlightEndpoint(b"a", [])]
        if self.other:
            endpoints.append(flight.FlightEndpoint(b"b", [self.other]))
        return flight.FlightInfo(_SCHEMA, descriptor, endpoints, -1, -1)

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(pa.table({"shard": [ticket.ticket.decode()] * 2}))

    def list_flights(self, context, criteria):
        descriptor = flight.FlightDescriptor.for_path("va_shards")
        yield flight.FlightInfo(_SCHEMA, descriptor, [], 42, -1)

    def do_exchange(self, context, descriptor, reader, writer):
        # The client loads over DoExchange, the call it can cancel.
        put = PutStream(reader, context, max_bytes=1 << 30)
        self.put.append(pa.Table.from_batches(list(put.batches()), reader.schema))
        rows = self.put[-1].num_rows
        writer.write_metadata(
            pa.py_buffer(json.dumps({"accepted": rows, "duplicates": 0}).encode())
        )


_SCHEMA = pa.schema([("shard", pa.string())])


@pytest.fixture
def shards() -> Iterator[tuple[_Shard, _Shard]]:
    second = _Shard()
    first = _Shard(other=f"grpc://127.0.0.1:{second.port}")
    yield first, second
    first.shutdown()
    second.shutdown()


def test_query_reads_every_endpoint_where_it_lives(shards):
    first, _second = shards
    with flightdeck.connect(f"grpc://127.0.0.1:{first.port}") as fd:
        assert fd.query("SELECT shard FROM va_shards").column("shard").to_pylist() == [
            "a",
            "a",
            "b",
            "b",
        ]


def test_a_token_goes_with_every_call_to_every_server(shards):
    first, second = shards
    with flightdeck.connect(f"grpc://127.0.0.1:{first.port}", token="s3cret") as fd:
        fd.query("SELECT 1")
        [view] = fd.views()
        fd.load(pa.table({"session_id": ["s"]}), progress=False)
    assert (view.name, view.rows) == ("va_shards", 42)
    calls = first.headers.seen + second.headers.seen
    assert {method.rsplit(".", 1)[-1] for method, _ in calls} >= {
        "GET_FLIGHT_INFO",
        "DO_GET",
        "LIST_FLIGHTS",
        "DO_EXCHANGE",
    }
    assert second.headers.seen, "the second endpoint was not asked"
    assert all(auth == ["Bearer s3cret"] for _, auth in calls)


def test_without_a_token_no_authorization_header_is_sent(shards):
    first, _ = shards
    with flightdeck.connect(f"grpc://127.0.0.1:{first.port}") as fd:
        fd.views()
    assert first.headers.seen and all(auth == [] for _, auth in first.headers.seen)


def test_load_splits_into_batches_of_at_most_batch_rows(shards):
    first, _ = shards
    with flightdeck.connect(f"grpc://127.0.0.1:{first.port}") as fd:
        result = fd.load(
            pa.table({"session_id": [str(i) for i in range(25)]}), batch_rows=10, progress=False
        )
    assert (result.accepted, result.rows) == (25, 25)
    assert [b.num_rows for b in first.put[0].to_batches()] == [10, 10, 5]
