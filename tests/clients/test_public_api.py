"""What `import flightdeck` offers, pinned; and what it costs."""

from __future__ import annotations

import subprocess
import sys

import flightdeck
import pytest


def test_public_names_are_pinned():
    assert sorted(flightdeck.__all__) == sorted(
        [
            "Change",
            "Client",
            "Error",
            "LiveMessage",
            "LiveSubscription",
            "LiveTable",
            "LoadError",
            "LoadInterrupted",
            "LoadResult",
            "NotFoundError",
            "QueryError",
            "ServerError",
            "ServerUnavailable",
            "TimedOut",
            "TrackFailure",
            "TrackStats",
            "Tracker",
            "Unauthorized",
            "ViewInfo",
            "__version__",
            "aio",
            "connect",
        ]
    )
    for name in flightdeck.__all__:
        assert getattr(flightdeck, name) is not None


def test_every_error_is_a_flightdeck_error():
    for name in flightdeck.__all__:
        value = getattr(flightdeck, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, flightdeck.Error)


def test_the_client_does_not_load_the_server():
    # A notebook that only queries should not pay for DuckDB, ADBC, sqlglot and NATS.
    code = (
        "import sys, flightdeck, flightdeck.cli; "
        "print(sorted(m for m in ('duckdb', 'sqlglot', 'nats', 'adbc_driver_manager', "
        "'flightdeck.flight_server', 'flightdeck.views') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr


def test_load_result_reports_its_rate():
    result = flightdeck.LoadResult(accepted=90, duplicates=10, rows=100, seconds=0.5)
    assert result.rows_per_second == 200.0
    assert flightdeck.LoadResult(0, 0, 0, 0.0).rows_per_second == 0.0
    with pytest.raises(AttributeError):
        result.rows = 5  # frozen


def test_query_polars_names_the_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "polars", None)  # as if it were not installed
    with flightdeck.connect("grpc://127.0.0.1:1") as client:
        with pytest.raises(ImportError, match="pip install polars"):
            client.query_polars("SELECT 1")
