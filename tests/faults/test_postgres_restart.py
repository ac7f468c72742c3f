"""Fault 3: PostgreSQL restarted (fast shutdown, same data and port) under query and put load.

In-flight calls fail with a clear Flight error instead of hanging; every put is
all or nothing (a put that said yes is all there, one that failed left no
row); and the same server object serves again once PostgreSQL is back: its
connection pools drop the dead connections by themselves.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.ingest import ingest
from flightdeck.views import BackendError, Store, StoreOptions, migrations, open_store

from benchmarks.postgres_server import PG_BIN, PostgresServer, _as_postgres
from tests.services import throwaway_postgres, wait_for

from .workload import assert_exact, pageviews

PUT = flight.FlightDescriptor.for_path("events", "pageview")
CALL = flight.FlightCallOptions(timeout=60)  # a hang fails the test as a timeout
SEED_ROWS = 60_000
PUT_ROWS = 3_000


def _restart(server: PostgresServer) -> None:
    server.restart()


@pytest.fixture
def restartable_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own: restarting the session's would hurt other tests."""
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
def pg_store(restartable_postgres, tmp_path) -> Iterator[Store]:
    with pg.connect(restartable_postgres.url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE faults")
    store = open_store(
        StoreOptions(db=restartable_postgres.url("faults"), data_dir=tmp_path, pool_size=4)
    )
    migrations.apply(store, migrations.load_migrations(store.backend))
    ingest(store, pageviews(SEED_ROWS, seed=30, prefix="seed").to_batches(max_chunksize=65_536))
    yield store
    store.close()


@dataclass
class Outcomes:
    """What each client call reported."""

    puts: dict[str, bool] = field(default_factory=dict)  # prefix -> succeeded
    reads: int = 0
    errors: list[Exception] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, exc: Exception) -> None:
        with self.lock:
            self.errors.append(exc)


def _put(client: flight.FlightClient, prefix: str, out: Outcomes, seed: int) -> bool:
    table = pageviews(PUT_ROWS, seed=seed, prefix=prefix)
    try:
        writer, meta = client.do_put(PUT, table.schema, options=CALL)
        writer.write_table(table, max_chunksize=500)
        writer.done_writing()
        meta.read()
        writer.close()
        ok = True
    except flight.FlightError as exc:
        out.failed(exc)
        ok = False
    with out.lock:
        out.puts[prefix] = ok
    return ok


def _read(client: flight.FlightClient, out: Outcomes) -> bool:
    try:
        table = client.do_get(flight.Ticket(b"va_pageview_event"), options=CALL).read_all()
    except flight.FlightError as exc:
        out.failed(exc)
        return False
    assert table.num_rows >= SEED_ROWS
    with out.lock:
        out.reads += 1
    return True


def _load(
    location: str, out: Outcomes, stop: threading.Event, go: threading.Event, name: str, puts: bool
) -> None:
    with flight.connect(location) as client:
        i = 0
        while not stop.is_set():
            if puts:
                go.wait()
                _put(client, f"{name}-{i}", out, seed=hash((name, i)) % 10_000)
            else:
                _read(client, out)
            i += 1


def _in_transaction(admin_url: str) -> bool:
    """A flightdeck write transaction is open (a put has staged its first rows)."""
    with pg.connect(admin_url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = 'faults' AND state = 'idle in transaction'"
        )
        return cursor.fetchone()[0] > 0


def test_postgresql_restart_under_query_and_put_load(restartable_postgres, pg_store, tmp_path):
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path), pg_store)
    location = f"grpc://127.0.0.1:{server.port}"
    out = Outcomes()
    stop = threading.Event()
    go = threading.Event()  # cleared: the load's puts pause between puts
    go.set()
    load = [
        threading.Thread(target=_load, args=(location, out, stop, go, f"t{n}", n < 2), daemon=True)
        for n in range(4)
    ]
    client = flight.connect(location)
    try:
        for thread in load:
            thread.start()
        assert wait_for(lambda: out.reads >= 2 and sum(out.puts.values()) >= 2, timeout=60)
        # One put held open mid-stream, and one read mid-stream, across the restart:
        # with the load's puts paused, an open write transaction is the held put's.
        go.clear()
        assert wait_for(lambda: not _in_transaction(restartable_postgres.url()), timeout=30)
        held = pageviews(PUT_ROWS, seed=99, prefix="held")
        writer, meta = client.do_put(PUT, held.schema, options=CALL)
        writer.write_batch(held.slice(0, 1000).to_batches()[0])
        assert wait_for(lambda: _in_transaction(restartable_postgres.url()), timeout=30)
        go.set()
        reading = client.do_get(flight.Ticket(b"va_pageview_event"), options=CALL)
        reading.read_chunk()

        _restart(restartable_postgres)  # fast shutdown: every backend is terminated

        with pytest.raises(flight.FlightError) as refused:
            writer.write_table(held.slice(1000), max_chunksize=500)
            writer.done_writing()
            meta.read()
            writer.close()  # the call's status arrives here
        out.puts["held"] = False
        assert "terminat" in str(refused.value) or "connection" in str(refused.value).lower()
        try:  # the read may have had every row in flight already; if not, a clear error
            rest = reading.read_all()
            assert rest.num_rows > 0
        except flight.FlightError as exc:
            out.failed(exc)

        # The same server serves again: the load threads and fresh calls all succeed.
        before = (out.reads, sum(out.puts.values()))
        assert wait_for(
            lambda: out.reads >= before[0] + 2 and sum(out.puts.values()) >= before[1] + 2,
            timeout=60,
        )
        stop.set()
        for thread in load:
            thread.join(60)
        for n in range(3):
            assert _read(client, out)
            assert _put(client, f"after-{n}", out, seed=1000 + n)
    finally:
        stop.set()
        client.close()
        server.shutdown()

    assert out.errors, "the restart should have cut some call short"
    for exc in out.errors:
        assert not isinstance(exc, flight.FlightTimedOutError), exc  # failed, never hung
        assert isinstance(exc, (flight.FlightUnavailableError, flight.FlightInternalError)), exc
        assert "postgresql" in str(exc).lower(), exc  # the backend's reason, named

    def present(prefix: str) -> int:
        sql = f"SELECT count(*) AS n FROM va_pageview_event WHERE event_id LIKE '{prefix}-%'"
        with pg_store.read(sql) as reader:
            return reader.read_all().column("n")[0].as_py()

    for prefix, ok in out.puts.items():
        assert present(prefix) == (PUT_ROWS if ok else 0), (prefix, ok)

    def query(sql: str) -> pa.Table:
        with pg_store.read(sql) as reader:
            return reader.read_all()

    assert_exact(query)


def test_one_dead_connection_empties_the_pool_after_an_idle_restart(restartable_postgres, pg_store):
    """PostgreSQL restarted while every pooled connection sat idle: the first query
    finds its connection dead and fails clearly; the pool then drops the other dead
    ones, so the next queries succeed instead of failing once per pooled connection."""
    ready = threading.Barrier(4)

    def hold_one() -> None:  # four at once: the pool opens four connections
        with pg_store.read("SELECT 1 AS x") as reader:
            ready.wait(30)
            reader.read_all()

    holders = [threading.Thread(target=hold_one) for _ in range(4)]
    for thread in holders:
        thread.start()
    for thread in holders:
        thread.join(30)
    _restart(restartable_postgres)

    def query() -> int:
        with pg_store.read("SELECT count(*) AS n FROM va_pageview_event") as reader:
            return reader.read_all().column("n")[0].as_py()

    with pytest.raises(BackendError) as lost:
        query()
    assert lost.value.kind == "unavailable" and "terminating connection" in str(lost.value)
    assert [query() for _ in range(4)] == [SEED_ROWS] * 4


def test_a_reader_login_refused_by_a_shutting_down_server_is_unavailable(
    restartable_postgres, pg_store
):
    """A query that needs a new reader connection while PostgreSQL shuts down is told
    to retry (BackendError, kind unavailable: UNAVAILABLE on the wire), not that the
    reader role is broken. Found by the restart test above, which failed once."""
    with pg_store.read("SELECT 1 AS ok") as reader:
        reader.read_all()  # the reader role exists and logs in
    with (
        pg.connect(restartable_postgres.url(), autocommit=True) as held,
        pg_store.read("SELECT 1 AS ok") as busy,
    ):  # a session keeps a smart shutdown waiting; the read keeps its connection
        _smart_shutdown(restartable_postgres)
        with pytest.raises(BackendError) as err:
            with pg_store.read("SELECT 2 AS ok") as reader:
                reader.read_all()
        assert err.value.kind == "unavailable", err.value
        busy.read_all()
        held.close()


def _smart_shutdown(server: PostgresServer) -> None:
    """Begin a smart shutdown (new logins refused with 57P03) without waiting for it."""
    stop = [str(PG_BIN / "pg_ctl"), "-D", str(server.data), "-m", "smart", "-W", "stop"]
    subprocess.run(_as_postgres(stop), check=True, capture_output=True, timeout=60)
    wait_for(lambda: _refuses_logins(server), timeout=10)


def _refuses_logins(server: PostgresServer) -> bool:
    try:
        pg.connect(server.url(), autocommit=True).close()
    except pg.Error:
        return True
    return False
