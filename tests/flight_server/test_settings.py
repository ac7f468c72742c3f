"""Settings: flags over environment over defaults, built once."""

from __future__ import annotations

import argparse
from pathlib import Path

from flightdeck.flight_server.settings import Settings, add_arguments, build_settings


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults():
    s = build_settings(_parse([]), {})
    assert s == Settings()
    assert s.location == "grpc://127.0.0.1:8815"
    assert s.db is None and s.data_dir == Path("flightdeck-data")


def test_environment_over_defaults_and_flags_over_environment():
    env = {
        "FLIGHTDECK_DB": "postgresql://env/db",
        "FLIGHTDECK_PORT": "9000",
        "NATS_URL": "nats://n",
    }
    s = build_settings(_parse([]), env)
    assert (s.db, s.port, s.nats) == ("postgresql://env/db", 9000, "nats://n")
    s = build_settings(_parse(["--db", "postgresql://flag/db", "--port", "9100"]), env)
    assert (s.db, s.port) == ("postgresql://flag/db", 9100)


def test_views_dirs_and_timeouts_are_typed():
    s = build_settings(
        _parse(["--views-dir", "a", "--views-dir", "b", "--query-timeout", "2.5"]),
        {"FLIGHTDECK_POOL_SIZE": "3"},
    )
    assert s.views_dir == (Path("a"), Path("b"))
    assert s.query_timeout == 2.5 and s.pool_size == 3
    assert s.duckdb_memory_limit is None  # DuckDB's own default
    limited = build_settings(_parse(["--duckdb-memory-limit", "1GB"]), {})
    assert limited.store_options().duckdb_memory_limit == "1GB"
    assert build_settings(_parse([]), {"FLIGHTDECK_VIEWS_DIR": "x:y"}).views_dir == (
        Path("x"),
        Path("y"),
    )


def test_ingest_and_retention_settings():
    s = build_settings(_parse([]), {})
    assert (s.nats, s.ingest_batch, s.ingest_wait_ms, s.raw_retention_days) == (
        None,
        20_000,
        100,
        90,
    )
    env = {"FLIGHTDECK_INGEST_BATCH": "200", "FLIGHTDECK_RAW_RETENTION_DAYS": "0"}
    s = build_settings(_parse(["--ingest-wait-ms", "20", "--raw-retention-days", "30"]), env)
    assert (s.ingest_batch, s.ingest_wait_ms, s.raw_retention_days) == (200, 20, 30)


def test_reader_url_reaches_the_store():
    env = {"FLIGHTDECK_DB_READ_URL": "postgresql://reader:pw@env/db"}
    s = build_settings(_parse([]), env)
    assert s.store_options().read_db == "postgresql://reader:pw@env/db"
    s = build_settings(_parse(["--db-read-url", "postgresql://reader:pw@flag/db"]), env)
    assert s.store_options().read_db == "postgresql://reader:pw@flag/db"
    assert build_settings(_parse([]), {}).store_options().read_db is None


def test_decoded_payload_limits():
    s = build_settings(_parse([]), {})
    assert (
        s.max_put_batch_mb,
        s.max_parameter_mb,
        s.max_message_mb,
        s.ingest_batch_mb,
        s.max_deliveries,
    ) == (64.0, 1.0, 16.0, 128.0, 5)
    env = {
        "FLIGHTDECK_MAX_PARAMETER_MB": "0.5",
        "FLIGHTDECK_MAX_MESSAGE_MB": "4",
        "FLIGHTDECK_INGEST_BATCH_MB": "32",
        "FLIGHTDECK_MAX_DELIVERIES": "9",
    }
    s = build_settings(_parse(["--max-message-mb", "2", "--max-deliveries", "3"]), env)
    assert (s.max_parameter_mb, s.max_message_mb, s.ingest_batch_mb, s.max_deliveries) == (
        0.5,
        2.0,
        32.0,
        3,
    )


def test_read_replicas_are_repeatable_flags_or_a_comma_separated_variable():
    a, b = "postgresql://10.0.0.2:5432/app", "postgresql://10.0.0.3:5432/app?sslmode=require"
    env = {"FLIGHTDECK_READ_REPLICAS": f"{a}, {b}", "FLIGHTDECK_REPLICA_MAX_LAG": "2.5"}
    s = build_settings(_parse([]), env)
    assert s.read_replica == (a, b)
    assert s.store_options().read_replicas == (a, b)
    assert s.store_options().replica_max_lag_s == 2.5
    s = build_settings(_parse(["--read-replica", b, "--read-replica", a]), env)
    assert s.store_options().read_replicas == (b, a)
    assert build_settings(_parse([]), {}).store_options().read_replicas == ()
