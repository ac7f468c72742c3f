"""`flightdeck serve`, `ingest` and `migrate` as a user runs them: real processes."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.views import StoreOptions, open_store

from tests import nats_client
from tests.services import wait_for

CLI = [sys.executable, "-m", "flightdeck.cli"]


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def _running(args: list[str], cwd) -> Iterator[subprocess.Popen]:
    """`flightdeck ARGS` as a background process, killed if the test leaves it running."""
    proc = subprocess.Popen([*CLI, *args], cwd=cwd, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _store_flags(backend: str, db_url: str) -> list[str]:
    return ["--data-dir", "data"] if backend == "duckdb" else ["--db", db_url]


@pytest.mark.slow  # a long run (processes, waits): make test runs it
def test_migrate_status_apply_and_dry_run(backend, db_url, tmp_path):
    flags = _store_flags(backend, db_url)
    before = _run(["migrate", "status", *flags], tmp_path)
    assert before.returncode == 0, before.stderr
    assert "pending" in before.stdout and "0 applied" in before.stdout
    plan = _run(["migrate", "dry-run", *flags], tmp_path)
    assert "CREATE TABLE IF NOT EXISTS tb_pageview_event" in plan.stdout
    assert 'CREATE VIEW "va_pageview_aggregate"' in plan.stdout
    assert (
        "pending" in _run(["migrate", "status", *flags], tmp_path).stdout
    )  # dry-run applied nothing
    pre = _run(["migrate", "pre", *flags], tmp_path)
    assert "002_pageview_aggregates" in pre.stdout and "va_" not in pre.stdout
    applied = _run(["migrate", *flags], tmp_path)
    assert applied.returncode == 0 and "va_pageview_event" in applied.stdout
    assert "rollup   va_site_daily installed and backfilled" in applied.stdout
    after = _run(["migrate", "status", *flags], tmp_path)
    lines = after.stdout.splitlines()
    assert all(line.startswith("applied") for line in lines[:-1]) and len(lines) == 25
    assert lines[-1].startswith("24 applied, 0 pending")  # 20 pre migrations, 4 views
    assert "010_reader_role" in after.stdout and "011_ingest_turn" in after.stdout
    assert "012_live_signing_key" in after.stdout and "013_load" in after.stdout
    again = _run(["migrate", "all", *flags], tmp_path)
    assert "applied " not in again.stdout and "up to date" in again.stdout


@pytest.mark.parametrize("backend", ["postgresql"])
def test_serve_refuses_a_reader_url_that_can_do_more_than_read_views(db_url, tmp_path):
    # The operator's own (superuser, table-owning) URL given as the reader's.
    proc = _run(["serve", "--db", db_url, "--port", "0", "--db-read-url", db_url], tmp_path)
    assert proc.returncode == 1, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("flightdeck:")]
    assert "reader role 'postgres'" in line and "is a superuser" in line, line
    assert "tb_pageview_event" in line and "README" in line, line


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_serve_answers_queries_and_stops_cleanly(backend, db_url, tmp_path, stop):
    with _running(["serve", "--port", "0", *_store_flags(backend, db_url)], tmp_path) as proc:
        serving = _serving_line(proc)
        client = flight.connect(_location(serving))

        def listing() -> list:
            try:
                return list(client.list_flights())
            except flight.FlightUnavailableError:
                return []

        # The page-view views, va_event and the ten built-in rollups.
        assert wait_for(lambda: len(listing()) == 14, timeout=60)
        descriptor = flight.FlightDescriptor.for_command(
            b"SELECT page_url, date, view_count, unique_visitors, bounce_rate "
            b"FROM va_pageview_aggregate ORDER BY view_count DESC LIMIT 100"
        )
        info = client.get_flight_info(descriptor)
        assert client.do_get(info.endpoints[0].ticket).read_all().num_rows == 0
        client.close()
        proc.send_signal(stop)
        code = proc.wait(timeout=30)
        log = proc.stderr.read()
        assert code == 0, log
        assert "shutting down" in log
        if backend == "duckdb":
            assert (tmp_path / "data" / "flightdeck.duckdb").exists()


def test_help_texts_have_examples():
    out = subprocess.run([*CLI, "serve", "--help"], capture_output=True, text=True).stdout
    assert "examples:" in out and "--db" in out
    out = subprocess.run([*CLI, "migrate", "--help"], capture_output=True, text=True).stdout
    assert "dry-run" in out and "status" in out


def _serving_line(proc: subprocess.Popen) -> str:
    for line in proc.stderr:
        if "serving location=" in line:
            return line
    raise AssertionError("serve exited before serving")


def _location(line: str) -> str:
    """The address serve listens on; with --port 0 the system chose the port."""
    return re.search(r"location=(grpc://\S+)", line).group(1)


def _nats_url(line: str) -> str:
    return re.search(r"nats=(nats://\S+)", line).group(1)


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_serve_embeds_nats_and_ingests_what_is_published(backend, db_url, tmp_path):
    with _running(["serve", "--port", "0", *_store_flags(backend, db_url)], tmp_path) as proc:
        serving = _serving_line(proc)
        nats_url = _nats_url(serving)
        events = [
            {
                "user_pk": 2,
                "session_id": f"session-{i % 5}",
                "page_url": "/test-page",
                "date": "2024-01-15",
                "timestamp": f"2024-01-15T10:{i:02d}:00Z",
            }
            for i in range(10)
        ]
        data_dir = tmp_path / ("data" if backend == "duckdb" else "flightdeck-data")
        nats_client.publish(nats_client.embedded_url(nats_url, data_dir, "writer"), events)
        client = flight.connect(_location(serving))
        query = flight.FlightDescriptor.for_command(
            b"SELECT view_count, unique_visitors FROM va_pageview_aggregate "
            b"WHERE page_url = '/test-page' AND date = DATE '2024-01-15'"
        )

        def daily() -> list:
            info = client.get_flight_info(query)
            return client.do_get(info.endpoints[0].ticket).read_all().to_pylist()

        assert wait_for(lambda: daily() == [{"view_count": 10, "unique_visitors": 5}], timeout=30)
        client.close()
        assert (data_dir / "nats" / "jetstream").is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        with pytest.raises(OSError):  # the embedded nats-server stopped with us
            socket.create_connection(("127.0.0.1", int(nats_url.rsplit(":", 1)[1])), timeout=2)


def test_standalone_ingest_worker_on_postgresql(pg_admin_url, tmp_path, nats_server):
    db_url = pg_admin_url
    worker = ["ingest", "--db", db_url, "--nats", nats_server.url, "--ingest-wait-ms", "20"]
    with _running(worker, tmp_path) as proc:
        for line in proc.stderr:
            if "ingesting" in line:
                break
        nats_client.publish(
            nats_server.url,
            [{"session_id": "w1", "page_url": "/standalone", "timestamp": "2024-03-01T08:00:00Z"}],
        )
        store = open_store(StoreOptions(db=db_url))
        try:

            def count() -> int:
                sql = "SELECT count(*) AS n FROM va_pageview_event WHERE page_url = '/standalone'"
                with store.read(sql) as reader:
                    return reader.read_all().column("n")[0].as_py()

            assert wait_for(lambda: count() == 1, timeout=30)
        finally:
            store.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_standalone_ingest_refuses_duckdb_with_the_reason(tmp_path):
    done = _run(["ingest", "--nats", "nats://127.0.0.1:4222"], tmp_path)
    assert done.returncode == 1
    assert "needs --db postgresql://" in done.stderr and "flightdeck serve" in done.stderr


def test_serve_stops_cleanly_with_a_live_subscriber_attached(tmp_path):
    with _running(["serve", "--port", "0", "--data-dir", "data"], tmp_path) as proc:
        client = flight.connect(_location(_serving_line(proc)))
        request = json.dumps({"subscribe": "va_pageview_aggregate"}).encode()
        _writer, reader = client.do_exchange(flight.FlightDescriptor.for_command(request))
        assert json.loads(reader.read_chunk().app_metadata.to_pybytes())["type"] == "snapshot_end"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        last = json.loads(reader.read_chunk().app_metadata.to_pybytes())
        assert last["type"] == "error" and "shutting down" in last["reason"]
        client.close()


def test_two_serve_processes_on_one_nats_share_updates(pg_admin_url, nats_server, tmp_path):
    """A put into one server process reaches a live subscriber of another (PostgreSQL:
    a DuckDB file has one owner)."""
    flags = ["--port", "0", "--db", pg_admin_url, "--nats", nats_server.url]
    with _running(["serve", *flags], tmp_path) as first:
        first_location = _location(_serving_line(first))
        with _running(["serve", *flags], tmp_path) as second:
            subscriber = flight.connect(_location(_serving_line(second)))
            request = json.dumps(
                {"subscribe": "va_pageview_aggregate", "where": {"page_url": "/two"}}
            ).encode()
            _w, reader = subscriber.do_exchange(flight.FlightDescriptor.for_command(request))
            assert json.loads(reader.read_chunk().app_metadata.to_pybytes())["type"] == (
                "snapshot_end"
            )
            loader = flight.connect(first_location)
            table = pa.table(
                {"session_id": ["p"], "page_url": ["/two"], "recorded_at": ["2024-01-15"]}
            )
            writer, meta = loader.do_put(
                flight.FlightDescriptor.for_path("events", "pageview"), table.schema
            )
            writer.write_table(table)
            writer.done_writing()
            meta.read()
            writer.close()
            while True:
                chunk = reader.read_chunk()
                if json.loads(chunk.app_metadata.to_pybytes())["type"] == "update":
                    break
            assert chunk.data.to_pylist()[0]["view_count"] == 1
            reader.cancel()
            loader.close()
            subscriber.close()
