"""arrow-flight's Flight SQL client (Rust) against flightdeck: tests/bi/rust runs a
query and a prepared statement bound twice; compared with a fresh Python query over
ADBC. Both backends; slow (builds a Rust program: about 75 s cold on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pytest

from tests.bi.programs import BI_DIR, build, cache_dir, run_json, tool

# A cold build (or Maven fetch) in a fixture runs under the test's timeout: on 2 busy
# cores it outlasted the suite's 300 s while the build's own bound is 900 s.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.filterwarnings("ignore:Cannot disable autocommit"),
]

QUERY = "SELECT page_url, view_count FROM va_pageview_aggregate ORDER BY page_url"


@pytest.fixture(scope="session")
def rust_program() -> Path:
    target = cache_dir("rust-target")
    env = {"CARGO_HOME": str(cache_dir("cargo")), "CARGO_TARGET_DIR": str(target)}
    # --locked: the committed Cargo.lock, so every clone builds the same crates.
    build([tool("cargo"), "build", "--locked", "--jobs", "2"], BI_DIR / "rust", env)
    return target / "debug" / "flightdeck-bi-rust"


@pytest.fixture
def loaded(server) -> None:
    events = pa.table(
        {
            "event_id": [f"rs-e{i}" for i in range(5)],
            "session_id": [f"s{i % 2}" for i in range(5)],
            "page_url": ["/a", "/b", "/a", "/a", "/b"],
            "recorded_at": pa.array([i * 60_000_000 for i in range(5)], pa.int64()).cast(
                pa.timestamp("us", "UTC")
            ),
        }
    )
    with flightsql.connect(f"grpc://127.0.0.1:{server.port}") as conn, conn.cursor() as cursor:
        assert cursor.adbc_ingest("tb_pageview_event", events, mode="append") == 5


def test_rust_flight_sql_client(rust_program, server, loaded):
    got = run_json([str(rust_program), f"http://127.0.0.1:{server.port}"])

    with flightsql.connect(f"grpc://127.0.0.1:{server.port}") as conn, conn.cursor() as cursor:
        cursor.execute(QUERY)
        expected = cursor.fetch_arrow_table().to_pylist()
    assert got["query"] == expected
    assert [r["page_url"] for r in expected] == ["/a", "/b"]
    by_page = {r["page_url"]: r for r in expected}
    assert got["prepared"] == [[by_page["/b"]], [by_page["/a"]]]
