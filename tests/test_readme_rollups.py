"""README "Your own rollup": the TOML file it shows, dropped in a folder, becomes an
exact, backfilled `va_` view after `flightdeck serve --rollups-dir` restarts, on both
backends; a changed file is rebuilt, a broken one stops the start naming it."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from tests.faults.processes import CLI, Flightdeck
from tests.faults.workload import flight_query
from tests.test_readme import _section

pytestmark = pytest.mark.slow  # two `flightdeck serve` processes and a failed start

SECTION = "Events of any type, and declared rollups"


def _readme_toml() -> str:
    text = _section(SECTION)
    block = re.search(r"\*\*Your own rollup\*\*.*?```toml\n(.*?)```", text, re.DOTALL)
    assert block, "README shows no rollup file"
    return block.group(1)


def _put(location: str, rows: list[dict]) -> dict:
    table = pa.Table.from_pylist(rows)
    with flight.connect(location) as client:
        writer, meta = client.do_put(flight.FlightDescriptor.for_path("events", "pageview"),
                                     table.schema)  # fmt: skip
        writer.write_table(table)
        writer.done_writing()
        reply = json.loads(meta.read().to_pybytes())
        writer.close()
    return reply


_DAY = dt.date.today() - dt.timedelta(days=1)  # recent: retention keeps it


def _views(i: int, session: str, plan: str, load_ms: float, minute: int) -> dict:
    at = dt.datetime.combine(_DAY, dt.time(10, minute), dt.UTC)
    return {"event_id": f"e{i}", "session_id": session, "page_url": f"/p{i % 2}",
            "recorded_at": at.isoformat(),
            "properties": json.dumps({"plan": plan, "load_ms": load_ms})}  # fmt: skip


def test_a_rollup_file_dropped_in_a_folder_is_a_view_after_a_restart(backend, db_url, tmp_path):
    store = ["--db", db_url] if backend == "postgresql" else ["--db", str(tmp_path / "f.duckdb")]
    base = ["serve", "--port", "0", "--data-dir", str(tmp_path / "data"), *store]
    serve = Flightdeck(base, tmp_path)
    serve.start()
    location = re.search(r"location=(\S+)", serve.ready_line).group(1)
    rows = [_views(0, "a", "pro", 100, 0), _views(1, "a", "pro", 300, 1),
            _views(2, "b", "free", 50, 2)]  # fmt: skip
    assert _put(location, rows) == {"accepted": 3, "duplicates": 0}
    serve.stop()

    folder = tmp_path / "rollups"
    folder.mkdir()
    (folder / "plans_weekly.toml").write_text(_readme_toml())
    serve = Flightdeck([*base, "--rollups-dir", str(folder)], tmp_path)
    serve.start()
    location = re.search(r"location=(\S+)", serve.ready_line).group(1)
    query = flight_query(location)
    sql = "SELECT week, plan, device, views, visits, p95_load_ms FROM va_plans_weekly"
    got = sorted(query(sql).to_pylist(), key=lambda r: r["plan"])
    monday = _DAY - dt.timedelta(days=_DAY.weekday())
    assert got == [
        {"week": monday, "plan": "free", "device": "unknown", "views": 1, "visits": 1,
         "p95_load_ms": 50.0},
        {"week": monday, "plan": "pro", "device": "unknown", "views": 2, "visits": 1,
         "p95_load_ms": pytest.approx(290.0)},
    ]  # fmt: skip
    assert any("rollup installed and backfilled name=plans_weekly" in x for x in serve.lines)
    # Kept exact from then on.
    assert _put(location, [_views(3, "b", "free", 70, 3)])["accepted"] == 1
    got = query("SELECT plan, views, visits FROM va_plans_weekly WHERE plan = 'free'").to_pylist()
    assert got == [{"plan": "free", "views": 2, "visits": 1}]
    serve.stop()

    (folder / "plans_weekly.toml").write_text("name = 'plans_weekly'\nmeasures = ['viewz']\n")
    broken = subprocess.run([*CLI, *base, "--rollups-dir", str(folder)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert broken.returncode == 1
    assert "plans_weekly.toml: measures: 'viewz' is not a measure" in broken.stderr
    assert "Traceback" not in broken.stderr
