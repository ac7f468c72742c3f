"""`reaggregate` on both backends: finds and repairs aggregates that drifted from raw events."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pyarrow as pa
import pytest
from flightdeck.ingest import ingest, reaggregate, retention

DAY1 = dt.date(2024, 1, 15)
DAY2 = dt.date(2024, 1, 16)


def _events(day: dt.date, pages: list[str]) -> pa.RecordBatch:
    start = dt.datetime.combine(day, dt.time(9), dt.UTC)
    return pa.record_batch(
        {
            "session_id": [f"s{i % 2}" for i in range(len(pages))],
            "page_url": pages,
            "recorded_at": pa.array(
                [start + dt.timedelta(minutes=7 * i) for i in range(len(pages))],
                pa.timestamp("us", "UTC"),
            ),
        }
    )


def _all(store, view: str) -> list[dict]:
    with store.read(f"SELECT * FROM {view}") as reader:
        rows = reader.read_all().drop_columns(["version"]).to_pylist()
    for row in rows:
        row.pop("computed_at", None)
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


def _damage(store) -> None:
    """What a bug or a hand edit might do: a wrong count, a lost hour, a row with no events."""
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute(
            "UPDATE tb_pageview_aggregate SET view_count = 999 "
            f"WHERE page_url = '/a' AND date = DATE '{DAY1}'"
        )
        cursor.execute("DELETE FROM tb_pageview_hourly WHERE page_url = '/b'")
        cursor.execute(
            "INSERT INTO tb_pageview_aggregate (page_url, date, view_count, unique_visitors, "
            "bounce_rate, avg_session_duration, computed_at, version) VALUES "
            f"('/ghost', DATE '{DAY2}', 1, 1, 100.0, 0.0, CURRENT_TIMESTAMP, 0)"
        )
        conn.commit()


def test_check_reports_and_repair_restores_exact_aggregates(store):
    ingest(store, [_events(DAY1, ["/a", "/b", "/a", "/c"]), _events(DAY2, ["/a", "/b"])])
    good = {v: _all(store, v) for v in ("va_pageview_aggregate", "va_pageview_hourly")}
    assert reaggregate(store, None, apply=False).differences == 0  # a clean store checks clean
    _damage(store)
    check = reaggregate(store, None, apply=False)
    assert (check.daily_changed, check.hourly_changed, check.removed) == (1, 2, 1)  # /b: 2 hours
    assert check.days == [DAY1, DAY2] and not check.applied
    assert _all(store, "va_pageview_aggregate") != good["va_pageview_aggregate"]  # untouched
    repair = reaggregate(store, None)
    assert repair.differences == 4 and repair.applied
    assert {v: _all(store, v) for v in good} == good
    assert reaggregate(store, None, apply=False).differences == 0


def test_one_day_repairs_only_that_day_and_keeps_expired_days(store):
    ingest(store, [_events(DAY1, ["/a", "/b"]), _events(DAY2, ["/a"])])
    _damage(store)
    repair = reaggregate(store, [DAY2])
    assert repair.days == [DAY2] and repair.removed == 1  # the ghost on DAY2
    wrong = [r for r in _all(store, "va_pageview_aggregate") if r["view_count"] == 999]
    assert len(wrong) == 1  # DAY1 was not in scope
    # A day whose raw events retention removed is never "repaired" into emptiness.
    retention.delete_expired(store, 1)
    kept = _all(store, "va_pageview_aggregate")
    repair = reaggregate(store, [DAY1, DAY2])
    assert repair.days == [] and repair.differences == 0
    assert _all(store, "va_pageview_aggregate") == kept


@pytest.mark.slow  # a long run (processes, waits): make test runs it
def test_reaggregate_command_exits_1_on_differences_then_0_after_repair(store, db_url, tmp_path):
    ingest(store, [_events(DAY1, ["/a", "/b", "/a"])])
    _damage(store)
    store.close()  # the command owns the DuckDB file while it runs

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "flightdeck.cli", "reaggregate", "--db", db_url, *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )

    check = run("--all", "--check")
    assert check.returncode == 1, check.stderr
    assert "differ" in check.stdout and "1 daily" in check.stdout
    fixed = run("--date", str(DAY1))
    assert fixed.returncode == 0 and "repaired  1 daily, 1 hourly" in fixed.stdout
    assert run("--all", "--check").returncode == 0
    usage = subprocess.run(
        [sys.executable, "-m", "flightdeck.cli", "reaggregate", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2 and "--date" in usage.stderr


def test_a_repair_that_finds_nothing_wrong_rewrites_no_stored_row(store):
    """Nothing is deleted and written again when it came back equal: every stored row
    keeps its physical place (PostgreSQL's ctid, DuckDB's rowid). A repair that
    rewrote every session-day and rollup row made each `reaggregate --all` commit
    grow with the store on DuckDB."""
    from flightdeck.ingest.rollup_install import install
    from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

    install(store, load_rollups([BUILTIN_DIR]))
    events = _events(DAY1, ["/a", "/b", "/a", "/c"])
    users = pa.array([f"u{i % 3}" for i in range(events.num_rows)])
    ingest(store, [events.append_column("user_id", users), _events(DAY2, ["/a", "/b"])])
    before = _places(store)
    assert reaggregate(store, None).differences == 0
    assert _places(store) == before


def _places(store) -> dict[str, list]:
    """Each aggregate and state table's rows with their physical place."""
    place = "ctid" if store.backend == "postgresql" else "rowid"
    with store.write() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'tb_rollup_%' "
            "AND table_name <> 'tb_rollup' AND table_type = 'BASE TABLE'"
        )
        tables = [r[0] for r in cursor.fetchall()]
        tables += ["tb_session_day", "tb_user_day", "tb_pageview_aggregate", "tb_pageview_hourly"]
        places = {}
        for table in tables:
            cursor.execute(f"SELECT CAST({place} AS TEXT), * FROM {table}")
            places[table] = sorted(map(str, cursor.fetchall()))
        conn.rollback()
    assert len(places["tb_session_day"]) > 0 and len(places["tb_user_day"]) > 0
    return places
