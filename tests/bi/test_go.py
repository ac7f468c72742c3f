"""arrow-go's Flight SQL client (what Grafana's Flight SQL data source and Go ADBC use)
against flightdeck: tests/bi/go/main.go ingests, queries, binds parameters, lists
tables with schemas, reads SqlInfo and session options; every answer is compared
with a fresh Python query over ADBC. Both backends; slow (builds a Go program)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import pytest

from tests.bi.programs import BI_DIR, build, cache_dir, run_json, tool

# A cold build (or Maven fetch) in a fixture runs under the test's timeout: on 2 busy
# cores it outlasted the suite's 300 s while the build's own bound is 900 s.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.filterwarnings("ignore:Cannot disable autocommit"),
]

BASE = dt.datetime(2024, 1, 15, 10, 0, tzinfo=dt.UTC)
QUERY = "SELECT page_url, view_count, unique_visitors FROM va_pageview_aggregate ORDER BY page_url"
PREPARED = "SELECT count(*) AS n FROM va_pageview_event WHERE session_id = ? AND recorded_at >= ?"


@pytest.fixture(scope="session")
def go_program() -> Path:
    go = cache_dir("go")
    program = cache_dir("bin") / "flightdeck-bi-go"
    env = {
        "GOMODCACHE": str(go / "mod"),
        "GOCACHE": str(go / "cache"),
        "GOPATH": str(go / "path"),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",  # the machine's Go; never download another
    }
    build([tool("go"), "build", "-o", str(program), "."], BI_DIR / "go", env)
    return program


def test_go_flight_sql_client(go_program, server, store):
    got = run_json([str(go_program), f"127.0.0.1:{server.port}"])

    assert got["ingested"] == 6
    with flightsql.connect(f"grpc://127.0.0.1:{server.port}") as conn, conn.cursor() as cursor:
        cursor.execute(QUERY)
        assert got["query"] == cursor.fetch_arrow_table().to_pylist()
        assert [r["page_url"] for r in got["query"]] == ["/go/a", "/go/b"]
        expected = []
        for session, after in [("go-s0", 0), ("go-s1", 2)]:
            cursor.execute(PREPARED, parameters=(session, BASE + dt.timedelta(minutes=after)))
            expected.append(cursor.fetch_arrow_table().to_pylist())
        assert got["prepared"] == expected == [[{"n": 3}], [{"n": 2}]]
        views = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        names = {t["table_name"] for c in views for s in c["catalog_db_schemas"]
                 for t in s["db_schema_tables"]}  # fmt: skip
        assert set(got["tables"]) == names
        for name, columns in got["tables"].items():
            assert columns == conn.adbc_get_table_schema(name).names

    # SqlInfo values are a dense union: Go writes [type code, value].
    assert got["sql_info"] == {"0": [0, "flightdeck"], "3": [1, True]}  # name, read-only
    assert got["session"] == {
        "catalog": "",
        "schema": store.schema_name,
        "set_same": "ok",
        "set_other": "INVALID_VALUE",
        "close": "CLOSED",
    }
