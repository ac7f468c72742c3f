"""Retention on both backends: old raw events go, their aggregates stay and stay final."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pyarrow as pa
import pytest
from flightdeck.flight_server import Settings
from flightdeck.flight_server.background import Background
from flightdeck.ingest import InvalidBatch, ingest, retention

from tests.services import wait_for

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def _events(day: dt.date, n: int, page: str = "/p") -> pa.RecordBatch:
    start = dt.datetime.combine(day, dt.time(10), dt.UTC)
    return pa.record_batch(
        {
            "session_id": [f"s{i % 3}" for i in range(n)],
            "page_url": [page] * n,
            "recorded_at": pa.array(
                [start + dt.timedelta(minutes=i) for i in range(n)], pa.timestamp("us", "UTC")
            ),
        }
    )


def _rows(store, sql: str) -> list[dict]:
    with store.read(sql) as reader:
        return reader.read_all().to_pylist()


def _daily(store) -> list[tuple]:
    rows = _rows(store, "SELECT * FROM va_pageview_aggregate ORDER BY date")
    return [(str(r["date"]), r["view_count"], r["unique_visitors"]) for r in rows]


OLD = dt.date(2026, 8, 1)  # 114 days before NOW
EDGE = dt.date(2026, 8, 25)  # exactly 90 days before NOW: the oldest day kept
RECENT = dt.date(2026, 11, 20)


def test_horizon_is_the_start_of_a_utc_day():
    assert retention.horizon(90, NOW) == dt.datetime(2026, 8, 25, tzinfo=dt.UTC)
    assert retention.horizon(0, NOW) is None


def test_old_raw_events_are_deleted_and_aggregates_kept(store):
    for day in (OLD, EDGE, RECENT):
        ingest(store, [_events(day, 6)])
    before = _daily(store)
    expired = retention.delete_expired(store, 90, now=NOW)
    assert (expired.deleted, expired.days) == (6, 1)
    remaining = _rows(
        store, "SELECT DISTINCT CAST(recorded_at AS DATE) AS d FROM va_pageview_event"
    )
    assert sorted(str(r["d"]) for r in remaining) == [str(EDGE), str(RECENT)]
    assert _daily(store) == before  # aggregates of every day, the expired one included
    again = retention.delete_expired(store, 90, now=NOW)
    assert (again.deleted, again.days) == (0, 0)
    assert retention.delete_expired(store, 0, now=NOW) is None  # 0 keeps everything


def test_a_late_event_for_an_expired_day_is_refused_and_changes_nothing(store):
    ingest(store, [_events(OLD, 6), _events(RECENT, 2)])
    retention.delete_expired(store, 90, now=NOW)
    before = _daily(store)
    late = pa.concat_batches([_events(RECENT, 1, page="/q"), _events(OLD, 1, page="/q")])
    with pytest.raises(InvalidBatch) as refused:
        ingest(store, [late])
    assert (refused.value.column, refused.value.row, refused.value.rule) == (
        "recorded_at",
        1,
        "retention",
    )
    assert str(OLD) in refused.value.detail
    assert _daily(store) == before  # nothing of that put was written
    # A backfill of days that never had events still works.
    ingest(store, [_events(dt.date(2026, 7, 1), 3)])
    assert ("2026-07-01", 3, 3) in _daily(store)


def test_serve_background_expires_old_raw_events_at_start(store, nats_server, tmp_path):
    ingest(store, [_events(dt.date(2024, 1, 15), 4), _events(dt.date.today(), 2)])
    settings = Settings(data_dir=tmp_path, raw_retention_days=90)
    background = Background(settings, store, nats_server.url, worker=False).start()
    try:
        count = "SELECT count(*) AS n FROM va_pageview_event"
        assert wait_for(lambda: _rows(store, count) == [{"n": 2}], timeout=10)
        assert [r[1] for r in _daily(store)] == [4, 2]
    finally:
        background.stop()


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_retention_command(store, backend, db_url, tmp_path):
    ingest(store, [_events(dt.date(2024, 1, 15), 4), _events(dt.date.today(), 2)])
    store.close()  # a DuckDB file has one owner at a time: the command is it now
    flags = ["--db", db_url]
    done = subprocess.run(
        [sys.executable, "-m", "flightdeck.cli", "retention", *flags, "--raw-retention-days", "30"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted  4 raw events before ")
