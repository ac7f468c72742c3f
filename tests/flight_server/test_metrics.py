"""The `health` action and the Prometheus endpoint, against real servers on both backends."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings, build_settings
from flightdeck.flight_server.auth import Authenticator, add_token
from flightdeck.flight_server.background import Background
from flightdeck.flight_server.health import Health
from flightdeck.flight_server.live.hub import LiveHub
from flightdeck.flight_server.live.request import parse_subscription
from flightdeck.flight_server.metrics import Metrics
from flightdeck.flight_server.settings import add_arguments
from flightdeck.views import describe
from flightdeck.views.live_views import LIVE_KEYS
from prometheus_client.parser import text_string_to_metric_families

from tests import nats_client
from tests.services import wait_for

# The ADBC driver warns that it cannot turn autocommit off: flightdeck has no transactions.
pytestmark = pytest.mark.filterwarnings("ignore:Cannot disable autocommit")

EVENTS = flight.FlightDescriptor.for_path("events", "pageview")
QUERY = b"SELECT page_url, view_count FROM va_pageview_aggregate ORDER BY page_url"
HEALTH = flight.Action("health", b"")
REQUESTS = "flightdeck_rpc_requests_total"
ROWS = "flightdeck_ingest_rows_total"
DEAD = "flightdeck_dead_letters_total"


def _health(client: flight.FlightClient) -> dict:
    (result,) = list(client.do_action(HEALTH))
    return json.loads(result.body.to_pybytes())


def _scrape(url: str) -> dict[tuple, float]:
    """Every sample at `url`, keyed by (name, sorted label pairs)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[tuple, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _events(ids: list[str]) -> pa.Table:
    return pa.table(
        {
            "event_id": ids,
            "session_id": ["s"] * len(ids),
            "page_url": ["/m"] * len(ids),
            "recorded_at": [f"2024-01-15T10:00:{i:02d}Z" for i in range(len(ids))],
        }
    )


def _put(client: flight.FlightClient, table: pa.Table) -> dict:
    writer, meta = client.do_put(EVENTS, table.schema)
    writer.write_table(table)
    writer.done_writing()
    summary = json.loads(meta.read().to_pybytes())
    writer.close()
    return summary


# ---- health ----


def test_health_reports_ok_and_is_listed(server, client, store):
    assert "health" in {a.type for a in client.list_actions()}
    report = _health(client)
    assert report["status"] == "ok"
    assert report["backend"] == store.backend
    assert report["store"] == "ok"
    assert report["nats"] == "off"  # this server has no NATS
    assert report["version"]
    assert 0 <= report["uptime_s"] < 60


def _make_unreachable(store, request) -> None:
    """Take the store away: DuckDB's database closed, PostgreSQL's database dropped."""
    if store.backend == "duckdb":
        store.close()
        return
    db_url = request.getfixturevalue("db_url")
    admin = request.getfixturevalue("pg_admin_url")
    with pg.connect(admin, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE {db_url.rsplit('/', 1)[1]} WITH (FORCE)")


def test_health_is_degraded_not_an_error_when_the_store_is_gone(server, client, store, request):
    assert _health(client)["store"] == "ok"
    _make_unreachable(store, request)
    started = time.monotonic()
    report = _health(client)
    assert time.monotonic() - started < 5
    assert report["status"] == "degraded"
    assert report["store"] != "ok" and report["store"].startswith(store.backend)
    assert report["backend"] == store.backend


class _HangingStore:
    """A store whose queries never answer until released (a network partition, say)."""

    backend = "postgresql"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.reads = 0

    @contextlib.contextmanager
    def read(self, sql: str, parameters=None):
        self.reads += 1
        self.release.wait(30)
        yield pa.table({"ok": [1]}).to_reader()


def test_health_answers_within_its_timeout_when_the_store_hangs():
    store = _HangingStore()
    health = Health(store, "0.0.0", lambda: "connected", timeout=0.2)
    try:
        started = time.monotonic()
        first, second = health.report(), health.report()
        assert time.monotonic() - started < 2
        assert first["status"] == second["status"] == "degraded"
        assert first["store"] == "no answer within 0.2 s"
        assert store.reads == 1  # the hung probe is waited on again, not repeated
    finally:
        store.release.set()
    assert wait_for(lambda: health.report()["status"] == "ok", timeout=5)


def test_health_is_degraded_while_nats_is_disconnected(store):
    state = {"nats": "disconnected"}
    health = Health(store, "0.0.0", lambda: state["nats"])
    assert health.report()["status"] == "degraded"
    assert health.report()["nats"] == "disconnected"
    state["nats"] = "connected"
    assert health.report()["status"] == "ok"


# ---- metrics ----


@contextlib.contextmanager
def _monitored(store, nats_url: str, tmp_path, **options):
    """A server process's parts, in this process, with metrics served on a free port."""
    settings = Settings(port=0, data_dir=tmp_path, raw_retention_days=0, heartbeat=0.5, **options)
    metrics = Metrics()
    with metrics.serve("127.0.0.1", 0) as endpoint:
        background = Background(settings, store, nats_url, worker=True, metrics=metrics).start()
        assert background.wait_ready(10)
        server = FlightdeckServer(
            settings,
            store,
            committed=background.committed,
            hub=background.hub,
            metrics=metrics,
            nats_status=background.nats_status,
            ingest_status=background.ingest_status,
        )
        try:
            yield f"grpc://127.0.0.1:{server.port}", endpoint.url
        finally:
            server.shutdown()
            background.stop()


def test_metrics_follow_rpcs_ingest_dead_letters_and_subscribers(store, nats_server, tmp_path):
    with _monitored(store, nats_server.url, tmp_path) as (location, url):
        client = flight.connect(location)
        health = _health(client)
        assert (health["status"], health["store"], health["nats"]) == ("ok", "ok", "connected")
        before = _scrape(url)
        assert _value(before, ROWS, source="nats", outcome="accepted") == 0
        assert _value(before, DEAD) == 0

        list(client.list_flights())
        info = client.get_flight_info(flight.FlightDescriptor.for_command(QUERY))
        client.do_get(info.endpoints[0].ticket).read_all()
        with pytest.raises(pa.ArrowInvalid):  # refused: tb_ tables are not served
            client.get_flight_info(
                flight.FlightDescriptor.for_command(b"SELECT * FROM tb_pageview_event")
            )
        assert _put(client, _events(["a", "b", "c"])) == {"accepted": 3, "duplicates": 0}
        assert _put(client, _events(["b", "c", "d"])) == {"accepted": 1, "duplicates": 2}
        with flightsql.connect(location) as conn, conn.cursor() as cursor:
            assert cursor.adbc_ingest("tb_pageview_event", _events(["d", "e"]), mode="append") == 1
        nats_client.publish(
            nats_server.url,
            [
                {"session_id": "n", "page_url": "/n", "timestamp": "2024-01-15T11:00:00Z"},
                b"this is not json",
            ],
        )

        def nats_done(samples) -> bool:
            rows = _value(samples, ROWS, source="nats", outcome="accepted")
            return rows == 1 and _value(samples, DEAD) == 1

        assert wait_for(lambda: nats_done(_scrape(url)), timeout=30)

        request = json.dumps({"subscribe": "va_pageview_aggregate"}).encode()
        writer, reader = client.do_exchange(flight.FlightDescriptor.for_command(request))
        while json.loads(reader.read_chunk().app_metadata.to_pybytes())["type"] != "snapshot_end":
            pass
        during = _scrape(url)
        assert _value(during, "flightdeck_live_subscribers") == 1
        assert _value(during, "flightdeck_live_pending_rows") >= 0
        reader.cancel()
        with contextlib.suppress(flight.FlightCancelledError):
            writer.close()
        assert wait_for(lambda: _value(_scrape(url), "flightdeck_live_subscribers") == 0, 10)
        # The call is counted once gRPC has finished it, a moment after the handler.
        assert wait_for(lambda: _exchanges(_scrape(url)) == {"cancelled": 1}, 10)

        after = _scrape(url)
        assert _value(after, REQUESTS, method="ListFlights", status="ok") == 1
        assert _value(after, REQUESTS, method="GetFlightInfo", status="ok") >= 1
        assert _value(after, REQUESTS, method="GetFlightInfo", status="invalid_argument") == 1
        assert _value(after, REQUESTS, method="DoGet", status="ok") >= 1
        assert _value(after, REQUESTS, method="DoPut", status="ok") >= 3  # 2 + Flight SQL's
        assert _value(after, REQUESTS, method="DoAction", status="ok") >= 1  # health
        assert _value(after, "flightdeck_rpc_duration_seconds_count", method="DoGet") >= 1
        assert _value(after, "flightdeck_rpc_duration_seconds_sum", method="DoGet") > 0
        assert _value(after, ROWS, source="doput", outcome="accepted") == 4
        assert _value(after, ROWS, source="doput", outcome="duplicate") == 2
        assert _value(after, ROWS, source="flight_sql", outcome="accepted") == 1
        assert _value(after, ROWS, source="flight_sql", outcome="duplicate") == 1
        assert _value(after, ROWS, source="nats", outcome="accepted") == 1
        client.close()


def test_the_store_cache_is_reported_where_it_lives_in_the_process(store, nats_server, tmp_path):
    # DuckDB's buffer pool is part of the server's RSS; PostgreSQL's is not.
    with _monitored(store, nats_server.url, tmp_path) as (location, url):
        client = flight.connect(location)
        _put(client, _events([f"m{i}" for i in range(50)]))
        samples = _scrape(url)
        memory = samples.get(("flightdeck_store_memory_bytes", ()))
        if store.backend == "duckdb":
            assert memory is not None and memory > 0
            assert memory == pytest.approx(store.memory_bytes(), rel=0.5)
        else:
            assert memory is None
        client.close()


def _exchanges(samples: dict[tuple, float]) -> dict[str, float]:
    return {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == REQUESTS and dict(labels)["method"] == "DoExchange"
    }


def test_pending_rows_of_a_lagging_subscriber_are_reported(store):
    """A subscriber that has not taken its updates yet: the gauges read the hub at scrape."""
    defaults = Settings()
    hub = LiveHub(
        defaults.live_buffer_rows,
        defaults.max_message_bytes,
        key=b"any key: nothing is published here",
    )
    schemas = {v.name: v.schema for v in describe(store)}
    request = b'{"subscribe": "va_pageview_aggregate"}'
    slow = hub.register(parse_subscription(request, schemas, LIVE_KEYS))
    hub.register(parse_subscription(request, schemas, LIVE_KEYS))
    rows = pa.table(
        {
            "page_url": ["/a", "/b", "/c"],
            "date": pa.array([19737] * 3, pa.int32()).cast(pa.date32()),
            "version": [1, 1, 1],
        }
    )
    slow.offer(rows, 7)
    metrics = Metrics()
    metrics.watch_live(hub)
    with metrics.serve("127.0.0.1", 0) as endpoint:
        samples = _scrape(endpoint.url)
    assert _value(samples, "flightdeck_live_subscribers") == 2
    assert _value(samples, "flightdeck_live_pending_rows") == 3
    assert _value(samples, "flightdeck_live_pending_rows_max") == 3


def test_each_server_has_its_own_registry(store, tmp_path):
    """Two servers in one process: neither sees the other's calls."""
    first, second = Metrics(), Metrics()
    servers = [
        FlightdeckServer(Settings(port=0, data_dir=tmp_path), store, metrics=m)
        for m in (first, second)
    ]
    try:
        with flight.connect(f"grpc://127.0.0.1:{servers[0].port}") as client:
            list(client.list_flights())
        with first.serve("127.0.0.1", 0) as a, second.serve("127.0.0.1", 0) as b:
            listed = (
                REQUESTS,
                (("method", "ListFlights"), ("status", "ok")),
            )
            assert _scrape(a.url)[listed] == 1
            assert listed not in _scrape(b.url)
    finally:
        for server in servers:
            server.shutdown()


def test_a_refused_unauthenticated_call_is_counted(store, tmp_path):
    auth_file = tmp_path / "auth.toml"
    token = add_token(auth_file, "bot", "reader")
    metrics = Metrics()
    settings = Settings(port=0, data_dir=tmp_path, auth_file=auth_file)
    server = FlightdeckServer(settings, store, metrics=metrics)
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            with pytest.raises(flight.FlightUnauthenticatedError):
                list(client.list_flights())
            options = flight.FlightCallOptions(
                headers=[(b"authorization", f"Bearer {token}".encode())]
            )
            assert _health_with(client, options)["status"] == "ok"
        with metrics.serve("127.0.0.1", 0) as endpoint:
            samples = _scrape(endpoint.url)
        assert _value(samples, REQUESTS, method="ListFlights", status="unauthenticated") == 1
        assert _value(samples, REQUESTS, method="DoAction", status="ok") == 1
    finally:
        server.shutdown()


def _health_with(client: flight.FlightClient, options: flight.FlightCallOptions) -> dict:
    (result,) = list(client.do_action(HEALTH, options))
    return json.loads(result.body.to_pybytes())


def test_metrics_port_flag_and_environment():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert build_settings(parser.parse_args([]), {}).metrics_port is None
    assert build_settings(parser.parse_args(["--metrics-port", "0"]), {}).metrics_port == 0
    env = {"FLIGHTDECK_METRICS_PORT": "9464"}
    assert build_settings(parser.parse_args([]), env).metrics_port == 9464
    assert build_settings(parser.parse_args(["--metrics-port", "9100"]), env).metrics_port == 9100


# ---- the real command ----


def test_serve_logs_its_metrics_address_and_serves_it(tmp_path):
    command = [sys.executable, "-m", "flightdeck.cli", "serve", "--port", "0"]
    command += ["--metrics-port", "0", "--data-dir", "data"]
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        found: dict[str, str] = {}
        for line in proc.stderr:
            if match := re.search(r"metrics location=(http://\S+)", line):
                found["metrics"] = match.group(1)
            if match := re.search(r"serving location=(grpc://\S+)", line):
                found["flight"] = match.group(1)
                break
        assert found.keys() == {"metrics", "flight"}, "serve exited before serving"
        with flight.connect(found["flight"]) as client:
            assert _health(client)["nats"] == "connected"
            list(client.list_flights())
        samples = _scrape(found["metrics"])
        assert _value(samples, REQUESTS, method="ListFlights", status="ok") == 1
        assert _value(samples, REQUESTS, method="DoAction", status="ok") == 1
        assert ("flightdeck_live_subscribers", ()) in samples
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- who may scrape (issue 14 item 9) ----


def _status_of(url: str, authorization: str | None = None) -> int:
    request = urllib.request.Request(url)
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_metrics_listen_beyond_loopback_only_where_flight_may(tmp_path):
    """The same rule as Flight: a public --host needs --auth-file or --insecure; the
    worker (which has no Flight listener to refuse) falls back to loopback."""
    assert Settings(host="0.0.0.0").metrics_host == "127.0.0.1"
    assert Settings(host="example.org").metrics_host == "127.0.0.1"
    assert Settings(host="0.0.0.0", insecure=True).metrics_host == "0.0.0.0"
    assert Settings(host="0.0.0.0", auth_file=tmp_path / "a").metrics_host == "0.0.0.0"
    assert Settings(host="::1").metrics_host == "::1"
    assert Settings().metrics_host == "127.0.0.1"


def test_metrics_need_a_credential_when_auth_is_on(tmp_path):
    auth_file = tmp_path / "auth.toml"
    token = add_token(auth_file, "prometheus", "reader")
    with Metrics().serve("127.0.0.1", 0, Authenticator(auth_file)) as endpoint:
        assert _status_of(endpoint.url) == 401
        assert _status_of(endpoint.url, "Bearer fdt_wrong") == 401
        assert _status_of(endpoint.url, f"Bearer {token}") == 200
    with Metrics().serve("127.0.0.1", 0) as endpoint:  # no auth: loopback or --insecure
        assert _status_of(endpoint.url) == 200


def test_serve_with_auth_on_a_public_host_guards_its_metrics(tmp_path):
    auth_file = tmp_path / "auth.toml"
    token = add_token(auth_file, "prometheus", "reader")
    command = [sys.executable, "-m", "flightdeck.cli", "serve", "--host", "0.0.0.0"]
    command += ["--port", "0", "--metrics-port", "0", "--data-dir", "data"]
    command += ["--auth-file", str(auth_file)]
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in proc.stderr:
            if match := re.search(r"metrics location=http://\S+:(\d+)/metrics", line):
                port = int(match.group(1))
            if "serving location=" in line:
                break
        assert port, "serve exited before serving its metrics"
        url = f"http://127.0.0.1:{port}/metrics"
        assert _status_of(url) == 401
        assert _status_of(url, f"Bearer {token}") == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_health_is_degraded_and_redeliveries_counted_while_a_batch_keeps_failing(
    store, nats_server, tmp_path
):
    # Issue 15, item 2: a batch redelivered every 2 s forever left health "ok".
    with _monitored(store, nats_server.url, tmp_path, ingest_wait_ms=20) as (location, url):
        client = flight.connect(location)
        assert _health(client)["ingest"] == "ok"
        with store.write() as conn, conn.cursor() as cursor:  # the store fails every commit
            cursor.execute("ALTER TABLE tb_aggregate_outbox RENAME TO tb_test_outbox_away")
            conn.commit()
        nats_client.publish(nats_server.url, [{"session_id": "s", "page_url": "/p",
                                               "timestamp": "2024-01-15T10:00:00Z"}])  # fmt: skip
        assert wait_for(lambda: _health(client)["status"] == "degraded", timeout=20)
        report = _health(client)
        assert report["ingest"].startswith("failing") and "sequence 1" in report["ingest"]
        assert wait_for(
            lambda: _value(_scrape(url), "flightdeck_ingest_redeliveries_total") >= 2, timeout=20
        )
        with store.write() as conn, conn.cursor() as cursor:
            cursor.execute("ALTER TABLE tb_test_outbox_away RENAME TO tb_aggregate_outbox")
            conn.commit()
        assert wait_for(lambda: _health(client)["status"] == "ok", timeout=20)
        assert _health(client)["ingest"] == "ok"
        client.close()
