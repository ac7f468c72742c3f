"""Streams whose clients stop reading must not hold the query path, on both backends.

Real idle clients: DoGet readers that never read, more of them than the query
slots (DuckDB) or the read pool (PostgreSQL) hold. While they hold it, other
queries are refused UNAVAILABLE saying why and health says degraded; within
the idle timeout the streams are cancelled, their slots and connections come
back, and the idle clients learn why if they ever read.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.views import BackendError, Store, StoreOptions, migrations, open_store

from tests.flight_server.pg_activity import active_queries
from tests.services import wait_for

# Wide rows, far more than gRPC's buffers: a stream whose client does not read stays open.
WIDE = "SELECT g AS n, repeat('x', 200) AS pad FROM generate_series(1, {rows}) AS t(g)"
IDLE_TIMEOUT = 5.0  # long enough to open every idle stream first on a busy machine
POOL = 2  # PostgreSQL connections in the read pool
SLOTS = 3  # query slots: more than the pool, so PostgreSQL runs out of connections first


@pytest.fixture
def small_store(db_url: str, tmp_path) -> Iterator[Store]:
    """A migrated store with a small read pool that waits 1 s for a connection; the
    query timeout stays long, so only the idle timeout can free what idle streams hold."""
    options = StoreOptions(
        db=db_url, data_dir=tmp_path, statement_timeout_s=120, pool_size=POOL, pool_timeout_s=1.0
    )
    store = open_store(options)
    migrations.apply(store, migrations.load_migrations(store.backend))
    yield store
    store.close()


@contextlib.contextmanager
def _serving(store: Store, tmp_path, **options) -> Iterator[flight.FlightClient]:
    settings = Settings(port=0, data_dir=tmp_path, max_queries=SLOTS, **options)
    server = FlightdeckServer(settings, store)
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            yield client
    finally:
        # gRPC's shutdown waits for every call, and a call whose client reads nothing
        # waits in its write: the idle readers are cancelled first (see _open_idle).
        while _OPEN:
            _OPEN.pop().cancel()
        server.shutdown()


_OPEN: list[flight.FlightStreamReader] = []


def _ticket(sql: str) -> flight.Ticket:
    return flight.Ticket(json.dumps({"v": 1, "sql": sql}).encode())


def _open_idle(client: flight.FlightClient, count: int) -> tuple[list, list[str]]:
    """Start `count` big streams and never read them; the refusals say why."""
    readers, refusals = [], []
    for _ in range(count):
        try:
            reader = client.do_get(_ticket(WIDE.format(rows=2_000_000)))
            _OPEN.append(reader)
            reader.schema  # noqa: B018 - the call is under way once its schema arrives
            readers.append(reader)
        except flight.FlightUnavailableError as exc:
            refusals.append(str(exc))
    return readers, refusals


def _can_hold(client: flight.FlightClient, count: int) -> bool:
    """Do `count` streams run at once? (They are cancelled again either way.)"""
    readers, _ = _open_idle(client, count)
    for reader in readers:
        reader.cancel()
    return len(readers) == count


def _health(client: flight.FlightClient) -> dict:
    return json.loads(next(iter(client.do_action(flight.Action("health", b"")))).body.to_pybytes())


def _serves(client: flight.FlightClient) -> bool:
    try:
        table = client.do_get(_ticket("SELECT 42 AS answer")).read_all()
    except flight.FlightUnavailableError:
        return False
    return table.column("answer").to_pylist() == [42]


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_idle_streams_are_cancelled_and_give_back_slots_and_connections(
    small_store, tmp_path, backend, db_url
):
    with _serving(small_store, tmp_path, stream_idle_timeout=IDLE_TIMEOUT) as client:
        readers, refusals = _open_idle(client, SLOTS + 1)
        held = min(SLOTS, POOL) if backend == "postgresql" else SLOTS
        assert len(readers) == held, refusals
        if backend == "postgresql":
            assert all("read pool" in r and "--pool-size" in r for r in refusals), refusals
        else:
            assert all("--max-queries" in r for r in refusals), refusals
        assert not _serves(client)
        health = _health(client)
        assert health["status"] == "degraded", health

        started = time.monotonic()
        assert wait_for(lambda: _serves(client), timeout=IDLE_TIMEOUT + 10)
        assert time.monotonic() - started < IDLE_TIMEOUT + 10
        assert wait_for(lambda: _health(client)["status"] == "ok", timeout=10), _health(client)
        if backend == "postgresql":  # cancelled in the database too, not left running
            assert wait_for(lambda: active_queries(db_url, "repeat(") == 0, timeout=10)

        # Every slot and connection comes back: as many streams as before run at once.
        assert wait_for(lambda: _can_hold(client, held), timeout=IDLE_TIMEOUT + 10, interval=0.5)

        # An idle client that comes back hears why its stream ended, not a short result.
        for reader in readers:
            with pytest.raises(flight.FlightTimedOutError, match="--stream-idle-timeout"):
                reader.read_all()


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_a_slow_but_steady_reader_is_not_cancelled(small_store, tmp_path):
    # About 3 MB/s: gRPC lets the server write on only after the client has taken a
    # flow-control window (a few MB), so the server waits over a second at a time.
    idle, rows = 2.5, 60_000  # about 12 MB in batches of 64 KB: longer than `idle` to read
    options = {"stream_idle_timeout": idle, "batch_bytes": 64 * 1024}
    with _serving(small_store, tmp_path, **options) as client:
        reader = client.do_get(_ticket(WIDE.format(rows=rows)))
        started, count = time.monotonic(), 0
        for chunk in reader:
            count += chunk.data.num_rows
            time.sleep(0.02)
        assert count == rows
        assert time.monotonic() - started > idle  # it did outlast the idle timeout


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_pool_wait_answers_unavailable_naming_pool_wait_and_flag(tmp_path, db_url):
    # The pool alone, without the server: two held connections, a third asked for.
    options = StoreOptions(db=db_url, data_dir=tmp_path, pool_size=2, pool_timeout_s=0.5)
    store = open_store(options)
    migrations.apply(store, migrations.load_migrations("postgresql"))
    try:
        with contextlib.ExitStack() as held:
            for _ in range(2):
                held.enter_context(store.read("SELECT 1 AS x"))
            started = time.monotonic()
            with pytest.raises(BackendError) as err:
                with store.read("SELECT 1 AS x"):
                    pass
            assert time.monotonic() - started < 5
            message = str(err.value)
            assert "read pool" in message and "0.5 s" in message and "--pool-size" in message
            assert err.value.kind == "unavailable"
        with store.read("SELECT 1 AS x") as reader:  # released: served again
            assert reader.read_all().num_rows == 1
    finally:
        store.close()
