"""Flight SQL bulk ingest of typed events: table "events.TYPE" (issue 19). Both backends."""

from __future__ import annotations

import json

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pytest


@pytest.fixture
def conn(server):
    with flightsql.connect(f"grpc://127.0.0.1:{server.port}") as connection:
        yield connection


def _requests() -> pa.Table:
    return pa.table(
        {
            "event_id": ["r1", "r2"],
            "session_id": ["s1", "s2"],
            "recorded_at": ["2024-05-30T10:00:00Z", "2024-05-30T10:00:01Z"],
            "duration_ms": [12.5, 80.0],
        }
    )


def test_bulk_ingest_into_events_type(conn):
    with conn.cursor() as cursor:
        assert cursor.adbc_ingest("events.api.request", _requests(), mode="append") == 2
        assert cursor.adbc_ingest("events.api.request", _requests(), mode="append") == 0
        cursor.execute("SELECT event_type, properties FROM va_event ORDER BY event_id")
        rows = cursor.fetchall()
    assert [r[0] for r in rows] == ["api.request"] * 2
    assert [json.loads(r[1]) for r in rows] == [{"duration_ms": 12.5}, {"duration_ms": 80.0}]


@pytest.mark.parametrize("table", ["events.Bad Type", "tb_event", "events."])
def test_bulk_ingest_elsewhere_is_refused(conn, table):
    with conn.cursor() as cursor, pytest.raises(flightsql.Error, match=r"event-type|ingest-target"):
        cursor.adbc_ingest(table, _requests(), mode="append")
