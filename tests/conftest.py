"""Fixtures: a real PostgreSQL per session, a fresh database or DuckDB file per test.

Every storage test takes `store` (or `server`), which is parametrised over both
backends, so each runs once on DuckDB and once on PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server import server as flight_server_module
from flightdeck.flight_server.nats_process import NatsProcess
from flightdeck.ingest import pipeline
from flightdeck.views import Store, StoreOptions, migrations, open_store

from tests import budget
from tests.services import postgres_server


def pytest_configure(config: pytest.Config) -> None:
    """`make test` (slow tests selected) runs property tests in full: see tests/budget.py."""
    marks = config.getoption("markexpr") or ""
    # Tests start many `serve` processes at once: they would all want the HTTP face's
    # default port. Those that test the face pass --http-port themselves.
    os.environ.setdefault("FLIGHTDECK_HTTP_PORT", "0")
    budget.run_everything("slow" in marks.replace("not slow", ""))


BACKENDS = ["duckdb", "postgresql"]
_db_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, request, tmp_path: Path) -> str:
    """A brand-new, empty database of the test's backend."""
    if backend == "duckdb":
        return str(tmp_path / "test.duckdb")
    admin = request.getfixturevalue("pg_admin_url")
    name = f"flightdeck_test_{next(_db_numbers)}"
    with pg.connect(admin, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    return admin.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def raw_store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store with nothing applied."""
    store = open_store(StoreOptions(db=db_url, data_dir=tmp_path, statement_timeout_s=30))
    yield store
    store.close()


@pytest.fixture
def store(raw_store: Store) -> Store:
    """A migrated store: tables and va_ views exist, no rows."""
    migrations.apply(raw_store, migrations.load_migrations(raw_store.backend))
    return raw_store


@pytest.fixture
def server(store: Store, tmp_path: Path) -> Iterator[FlightdeckServer]:
    srv = FlightdeckServer(Settings(port=0, data_dir=tmp_path), store)
    yield srv
    srv.shutdown()


@pytest.fixture
def client(server: FlightdeckServer) -> Iterator[flight.FlightClient]:
    with flight.connect(f"grpc://127.0.0.1:{server.port}") as c:
        yield c


def insert(store: Store, table: str, data: pa.Table) -> None:
    """Test seeding goes straight to the tables, bypassing ingest on purpose.

    Columns `data` lacks take the table's defaults (the aggregates' internal sums).
    """
    columns = ", ".join(data.column_names)
    values = columns.replace("properties", "CAST(properties AS JSON)")  # as ingest does
    with store.write() as conn:
        with conn.cursor() as cursor:
            # DuckDB 2.0's ADBC ingest fails on batches over its 2,048-row vector size
            # for some column types (all-null ones among them), so feed it vector-sized batches.
            reader = data.to_reader(max_chunksize=2048)
            cursor.adbc_ingest("flightdeck_seed", reader, mode="create", temporary=True)
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {values} FROM flightdeck_seed")
            cursor.execute("DROP TABLE flightdeck_seed")
        conn.commit()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsProcess]:
    """A real nats-server with JetStream on a free loopback port, store under tmp_path."""
    with NatsProcess(tmp_path / "nats") as server:
        yield server


def _pause(monkeypatch, owner, name: str, after: bool) -> threading.Event:
    """Pause `owner.name` (before or after it runs) until the returned event is set;
    its `reached` event tells when the pause began."""
    release = threading.Event()
    release.reached = threading.Event()
    real = getattr(owner, name)

    def paused(*args, **kwargs):
        if not after:
            release.reached.set()
            release.wait(30)
        result = real(*args, **kwargs)
        if after:
            release.reached.set()
            release.wait(30)
        return result

    monkeypatch.setattr(owner, name, paused)
    return release


@pytest.fixture
def slow_commit(monkeypatch) -> threading.Event:
    """The in-process server pauses where it writes a put's fold in the writer's turn,
    inside its transaction just before its commit, until the test sets the returned event."""
    return _pause(monkeypatch, pipeline, "_apply", after=False)


@pytest.fixture
def slow_answer(monkeypatch) -> threading.Event:
    """The in-process server pauses after a put has committed, before it answers."""
    return _pause(monkeypatch, flight_server_module, "ingest", after=True)
