"""Every `flightdeck` command answers a mistake or a missing service the same way: one
line on stderr naming what was wrong, exit 1, never a Python traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.clients.conftest import pageviews
from tests.flight_server.test_live import _server

CLI = [sys.executable, "-m", "flightdeck.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fails_in_one_line(*args: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTDECK_", "NATS_"))}
    done = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={**environ, **env}, timeout=60
    )
    assert "Traceback" not in done.stderr, (args, done.stderr)
    assert done.returncode == 1, (args, done.returncode, done.stderr)
    last = done.stderr.splitlines()[-1]
    assert last.startswith("flightdeck"), (args, done.stderr)
    return last


@pytest.fixture
def location(store, nats_server, tmp_path):
    with _server(store, nats_server.url, tmp_path) as where:
        yield where


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_client_commands_refuse_bad_arguments_in_one_line(location, tmp_path):
    cases = [
        (["query", "SELECT * FROM va_bogus"], "va_bogus"),
        (["query", "SELEC 1"], "syntax"),
        (["load", str(tmp_path / "missing.parquet")], "missing.parquet"),
        (["tail", "va_bogus"], "va_bogus"),
        (["tail", "va_pageview_aggregate", "--where", "nope=1"], "nope"),
        (["tail", "va_pageview_aggregate", "--where", "page_url~/x"], "page_url~/x"),
        (["tail", "va_pageview_aggregate", "--cursor", "-1"], "cursor"),
    ]
    for args, named in cases:
        assert named in _fails_in_one_line(*args, "--location", location), args


def test_client_commands_without_a_server_say_so_in_one_line(tmp_path):
    nowhere = f"grpc://127.0.0.1:{_free_port()}"
    pq.write_table(pageviews(10), tmp_path / "events.parquet")
    for args in (
        ["query", "SELECT 1"],
        ["load", str(tmp_path / "events.parquet"), "--no-progress"],
        ["views"],
        ["tail", "va_pageview_aggregate"],
    ):
        assert nowhere.removeprefix("grpc://") in _fails_in_one_line(*args, "--location", nowhere)


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_server_commands_without_their_services_say_so_in_one_line(tmp_path):
    nowhere = f"postgresql://nobody@127.0.0.1:{_free_port()}/analytics"
    for args in (
        ["migrate", "--db", nowhere],
        ["reaggregate", "--all", "--db", nowhere],
        ["retention", "--db", nowhere],
        ["ingest", "--db", nowhere, "--nats", f"nats://127.0.0.1:{_free_port()}"],
        ["nats-credentials", "--data-dir", str(tmp_path / "none")],
    ):
        _fails_in_one_line(*args)


def test_serve_refuses_bad_settings_and_a_failed_nats_start_in_one_line(tmp_path: Path):
    assert "abc" in _fails_in_one_line("serve", "--data-dir", str(tmp_path), FLIGHTDECK_PORT="abc")
    # nats-server cannot start JetStream where its store directory is a file.
    (tmp_path / "nats").mkdir()
    (tmp_path / "nats" / "jetstream").touch()
    line = _fails_in_one_line("serve", "--data-dir", str(tmp_path), "--port", "0")
    assert "nats-server did not start" in line and "not a directory" in line
