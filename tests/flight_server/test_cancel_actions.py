"""CancelFlightInfo and Flight SQL's CancelQuery stop the query behind a FlightInfo.

A client that ran GetFlightInfo and DoGet cancels by sending the FlightInfo back
on its own call; the DoGet ends CANCELLED and the backend stops within a second
(PostgreSQL's pg_stat_activity, DuckDB's CPU time in this process). A cancel
that comes first makes the ticket's later DoGet CANCELLED.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.auth import Identity
from flightdeck.flight_server.flight_sql import messages as pb
from flightdeck.flight_server.flight_sql.commands import pack, unpack
from flightdeck.flight_server.running_queries import RunningQueries
from flightdeck.views import Interrupt, Store, StoreOptions, migrations, open_store
from google.protobuf import any_pb2

from tests.flight_server import long_query
from tests.services import wait_for

pytestmark = pytest.mark.slow  # servers and long queries per test: make test runs them

CANCELLED, NOT_CANCELLABLE = 1, 3  # CancelStatus / CancelResult


@pytest.fixture
def long_store(db_url: str, tmp_path) -> Iterator[Store]:
    options = StoreOptions(db=db_url, data_dir=tmp_path, statement_timeout_s=600, pool_size=2)
    store = open_store(options)
    migrations.apply(store, migrations.load_migrations(store.backend))
    yield store
    store.close()


@contextlib.contextmanager
def _serving(store: Store, tmp_path) -> Iterator[flight.FlightClient]:
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path), store)
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            yield client
    finally:
        server.shutdown()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _cancel_flight_info(client: flight.FlightClient, info: flight.FlightInfo) -> int:
    """CancelFlightInfoRequest{info = 1} encoded by hand, as Flight.proto defines it;
    the CancelFlightInfoResult's status."""
    raw = info.serialize()
    body = b"\x0a" + _varint(len(raw)) + raw
    (result,) = client.do_action(flight.Action("CancelFlightInfo", body))
    answer = result.body.to_pybytes()
    assert answer[:1] == b"\x08", answer  # field 1, a varint
    return answer[1]


def _cancel_query(client: flight.FlightClient, info: flight.FlightInfo) -> int:
    body = pack(pb.ActionCancelQueryRequest(info=info.serialize()))
    (result,) = client.do_action(flight.Action("CancelQuery", body))
    wrapped = any_pb2.Any.FromString(result.body.to_pybytes())
    assert wrapped.type_url.endswith("arrow.flight.protocol.sql.ActionCancelQueryResult")
    return pb.ActionCancelQueryResult.FromString(wrapped.value).result


def _statement(sql: str) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(pack(pb.CommandStatementQuery(query=sql)))


def _read_in_background(client: flight.FlightClient, ticket: flight.Ticket) -> list:
    """Read the ticket on a thread; the list gets the error the DoGet ended with."""
    outcome: list = []

    def read() -> None:
        try:
            client.do_get(ticket).read_all()
            outcome.append(None)
        except flight.FlightError as exc:
            outcome.append(exc)

    threading.Thread(target=read, daemon=True).start()
    return outcome


@pytest.mark.parametrize("cancel", [_cancel_flight_info, _cancel_query])
def test_a_cancel_action_stops_the_running_query_within_a_second(
    long_store, tmp_path, backend, db_url, cancel
):
    with _serving(long_store, tmp_path) as client:
        idle = long_query.idle_rate(backend)
        info = client.get_flight_info(_statement(long_query.aggregate(backend)))
        outcome = _read_in_background(client, info.endpoints[0].ticket)
        assert wait_for(lambda: long_query.busy(backend, db_url, idle), timeout=30)

        cancelled_at = time.monotonic()
        assert cancel(client, info) == CANCELLED
        took = long_query.seconds_until_idle(backend, db_url, cancelled_at, idle)
        assert took <= long_query.IDLE_WITHIN_S, f"the store ran the query {took:.2f} s more"

        assert wait_for(lambda: outcome, timeout=5)
        # Not CANCELLED mid-stream: pyarrow would turn that into a SIGINT (server.py).
        assert isinstance(outcome[0], flight.FlightTimedOutError), outcome
        assert "was cancelled (CancelFlightInfo" in str(outcome[0])
        # The ticket stays cancelled; the same query asked for again runs.
        with pytest.raises(flight.FlightCancelledError):
            client.do_get(info.endpoints[0].ticket).read_all()
        again = client.get_flight_info(_statement("SELECT 42 AS answer"))
        assert client.do_get(again.endpoints[0].ticket).read_all().to_pylist() == [{"answer": 42}]


def test_a_ticket_cancelled_before_its_doget_answers_cancelled(store, tmp_path):
    with _serving(store, tmp_path) as client:
        info = client.get_flight_info(_statement("SELECT 1 AS one"))
        assert _cancel_flight_info(client, info) == CANCELLED
        with pytest.raises(flight.FlightCancelledError, match="GetFlightInfo"):
            client.do_get(info.endpoints[0].ticket).read_all()
        # A second GetFlightInfo of the same query gets a ticket of its own.
        fresh = client.get_flight_info(_statement("SELECT 1 AS one"))
        assert client.do_get(fresh.endpoints[0].ticket).read_all().num_rows == 1


def test_metadata_and_bad_bodies(store, tmp_path):
    with _serving(store, tmp_path) as client:
        tables = flight.FlightDescriptor.for_command(pack(pb.CommandGetTables()))
        assert _cancel_flight_info(client, client.get_flight_info(tables)) == NOT_CANCELLABLE
        with pytest.raises(pa.ArrowInvalid, match="info is not a serialized FlightInfo"):
            list(client.do_action(flight.Action("CancelFlightInfo", b"\x0a\x03abc")))
        names = [action.type for action in client.list_actions()]
        assert {"CancelFlightInfo", "CancelQuery"} <= set(names)
        assert unpack(pack(pb.ActionCancelQueryRequest(info=b"x"))).info == b"x"


ALICE, BOB = Identity("alice", "reader"), Identity("bob", "reader")
ROOT = Identity("root", "admin")


class _Counted(Interrupt):
    def __init__(self) -> None:
        super().__init__()
        self.fires = 0

    def fire(self) -> None:
        self.fires += 1
        super().fire()


def test_a_reader_cancels_only_their_own_runs_and_an_admin_any():
    running = RunningQueries()
    alices, bobs = _Counted(), _Counted()
    running.start(b"t", ALICE, alices)
    running.start(b"t", BOB, bobs)

    assert running.cancel(b"t", ALICE) == 1
    assert (alices.fires, bobs.fires) == (1, 0)
    assert running.start(b"t", ALICE, Interrupt()) is None  # refused from now on
    assert running.start(b"t", BOB, Interrupt()) is not None  # not Alice's to stop

    assert running.cancel(b"t", ROOT) == 3  # both of Bob's, and Alice's again
    assert (alices.fires, bobs.fires) == (2, 1)
    assert running.start(b"t", BOB, Interrupt()) is None


def test_finished_runs_are_forgotten_and_remembered_cancels_are_bounded():
    running = RunningQueries(remember_s=0.2, max_remembered=3)
    finish = running.start(b"t", ALICE, Interrupt())
    assert running.running() == 1
    finish()
    assert running.running() == 0

    for n in range(5):
        running.cancel(b"x%d" % n, ALICE)
    assert not running.cancelled(b"x0", ALICE)  # the oldest went first
    assert running.cancelled(b"x4", ALICE)
    time.sleep(0.3)
    assert not running.cancelled(b"x4", ALICE)  # expired
