"""`flightdeck serve` and `flightdeck migrate` as a user runs them: real processes."""

from __future__ import annotations

import signal
import subprocess
import sys

import pyarrow.flight as flight
import pytest

from tests.services import free_port, wait_for

CLI = [sys.executable, "-m", "flightdeck.cli"]


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _store_flags(backend: str, db_url: str) -> list[str]:
    return ["--data-dir", "data"] if backend == "duckdb" else ["--db", db_url]


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
    after = _run(["migrate", "status", *flags], tmp_path)
    lines = after.stdout.splitlines()
    assert all(line.startswith("applied") for line in lines[:-1]) and len(lines) == 10
    assert lines[-1].startswith("9 applied, 0 pending")
    again = _run(["migrate", "all", *flags], tmp_path)
    assert "applied " not in again.stdout and "up to date" in again.stdout


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_answers_queries_and_stops_cleanly(backend, db_url, tmp_path, stop):
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *_store_flags(backend, db_url)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = flight.connect(f"grpc://127.0.0.1:{port}")

        def listing() -> list:
            try:
                return list(client.list_flights())
            except flight.FlightUnavailableError:
                return []

        assert wait_for(lambda: len(listing()) == 3, timeout=60)
        descriptor = flight.FlightDescriptor.for_command(
            b"SELECT page_url, date, view_count, unique_visitors, bounce_rate "
            b"FROM va_pageview_aggregate ORDER BY view_count DESC LIMIT 100"
        )
        info = client.get_flight_info(descriptor)
        assert client.do_get(info.endpoints[0].ticket).read_all().num_rows == 0
        client.close()
        proc.send_signal(stop)
        assert proc.wait(timeout=30) == 0
        log = proc.stderr.read()
        assert "serving location=grpc://127.0.0.1" in log and "shutting down" in log
        if backend == "duckdb":
            assert (tmp_path / "data" / "flightdeck.duckdb").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_help_texts_have_examples():
    out = subprocess.run([*CLI, "serve", "--help"], capture_output=True, text=True).stdout
    assert "examples:" in out and "--db" in out
    out = subprocess.run([*CLI, "migrate", "--help"], capture_output=True, text=True).stdout
    assert "dry-run" in out and "status" in out
