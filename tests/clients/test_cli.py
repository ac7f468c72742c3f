"""`flightdeck query`, `load` and `views` as a user runs them: a real process, a real server."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from tests.clients.conftest import pageviews, store_far_times

CLI = [sys.executable, "-m", "flightdeck.cli"]


def _run(*args: str, location: str | None = None, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTDECK_")}
    environ.update(env)
    flags = ["--location", location] if location else []
    return subprocess.run(
        [*CLI, *args, *flags], capture_output=True, text=True, env=environ, timeout=60
    )


@pytest.fixture
def loaded(location, tmp_path) -> str:
    """The server after `flightdeck load` of 300 events (checked on the way)."""
    pq.write_table(pageviews(300), tmp_path / "events.parquet", row_group_size=100)
    done = _run("load", str(tmp_path / "events.parquet"), "--no-progress", location=location)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"loaded 300 rows: 300 accepted, 0 duplicates in \d+\.\d s \([\d,]+ rows/s\)\n",
        done.stdout,
    )
    return location


def test_load_twice_counts_duplicates_and_shows_progress(loaded, tmp_path):
    # The location comes from the environment this time, as FLIGHTDECK_URL.
    again = _run(
        "load", str(tmp_path / "events.parquet"), "--batch-rows", "64", FLIGHTDECK_URL=loaded
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("loaded 300 rows: 0 accepted, 300 duplicates in ")
    assert "300/300" in again.stderr and "rows" in again.stderr  # tqdm's bar, on stderr


def test_query_prints_an_aligned_table(loaded):
    done = _run(
        "query",
        "SELECT page_url, CAST(sum(view_count) AS BIGINT) AS views FROM va_pageview_aggregate "
        "GROUP BY page_url ORDER BY page_url",
        location=loaded,
    )
    assert done.returncode == 0, done.stderr
    header, rule, *rows, footer = done.stdout.splitlines()
    assert header.split() == ["page_url", "views"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert [row.split() for row in rows] == [
        ["/home", "100"],
        ["/pricing", "100"],
        ["/products", "100"],
    ]
    assert footer == "(3 rows)"
    assert len({len(line) for line in (header, rule)}) == 1  # columns line up


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_query_writes_json_lines_csv_and_parquet(loaded, tmp_path):
    sql = "SELECT page_url, date, view_count FROM va_pageview_aggregate ORDER BY page_url, date"
    as_json = _run("query", sql, "--format", "json", location=loaded)
    assert as_json.returncode == 0, as_json.stderr
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert rows[0] == {"page_url": "/home", "date": "2024-01-15", "view_count": 85}
    assert len(rows) == 6
    out = tmp_path / "out.csv"
    as_csv = _run("query", sql, "--format", "csv", "--output", str(out), location=loaded)
    assert as_csv.returncode == 0 and "wrote 6 rows" in as_csv.stderr
    with out.open() as file:
        assert [r["page_url"] for r in csv.DictReader(file)] == [r["page_url"] for r in rows]
    parquet = tmp_path / "out.parquet"
    assert (
        _run("query", sql, "--format", "parquet", "-o", str(parquet), location=loaded).returncode
        == 0
    )
    assert pq.read_table(parquet).column("view_count").to_pylist() == [
        r["view_count"] for r in rows
    ]
    refused = _run("query", sql, "--format", "parquet", location=loaded)
    assert refused.returncode == 1 and "add --output FILE" in refused.stderr


def test_views_lists_each_view_with_columns_and_types(location):
    done = _run("views", FLIGHTDECK_URL=location)
    assert done.returncode == 0, done.stderr
    blocks = done.stdout.strip().split("\n\n")
    assert [block.splitlines()[0].split()[0] for block in blocks] == [
        "va_event",
        "va_pageview_aggregate",
        "va_pageview_event",
        "va_pageview_hourly",
    ]
    assert re.search(r"^  view_count\s+int64$", blocks[1], re.MULTILINE)
    assert re.search(r"^  recorded_at\s+timestamp\[us, tz=UTC\]$", blocks[2], re.MULTILINE)


def test_errors_print_the_servers_sentence_and_exit_1(location, tmp_path):
    bad_sql = _run("query", "SELECT * FROM tb_pageview_event", location=location)
    assert bad_sql.returncode == 1 and bad_sql.stdout == ""
    assert bad_sql.stderr.startswith("flightdeck: query refused [va-views-only]: ")
    assert bad_sql.stderr.count("\n") == 1  # one line: no traceback, no pyarrow detail
    (tmp_path / "bad.csv").write_text("session_id,page_url\ns1,/home\n")
    bad_load = _run("load", str(tmp_path / "bad.csv"), "--no-progress", location=location)
    assert bad_load.returncode == 1
    assert bad_load.stderr.startswith(
        "flightdeck: batch refused [required-column] (column 'recorded_at'): missing"
    )
    nobody = _run("views", location="grpc://127.0.0.1:1")
    assert nobody.returncode == 1
    assert nobody.stderr.startswith("flightdeck: cannot reach a flightdeck server at grpc://")


def test_help_texts_have_examples():
    for command in ("query", "load", "views"):
        out = _run(command, "--help").stdout
        assert "examples:" in out and f"flightdeck {command}" in out and "--location" in out


_FAR = (
    "SELECT event_id, recorded_at, CAST(recorded_at AS DATE) AS day "
    "FROM va_pageview_event ORDER BY recorded_at"
)


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_query_prints_times_past_9999_in_iso_form(store, location, tmp_path):
    # Issue 14, item 10: OverflowError in every format but parquet, and csv printed
    # the year 33658 as -31900.
    store_far_times(store)
    table = _run("query", _FAR, location=location)
    assert table.returncode == 0, table.stderr
    assert [line.split() for line in table.stdout.splitlines()[2:5]] == [
        ["near", "2024-01-01T01:00:00.000005+00:00", "2024-01-01"],
        ["far", "+33658-01-01T01:00:00.000005+00:00", "+33658-01-01"],
        ["farther", "+287168-01-01T01:00:00.000005+00:00", "+287168-01-01"],
    ]
    as_json = _run("query", _FAR, "--format", "json", location=location)
    assert as_json.returncode == 0, as_json.stderr
    assert [json.loads(line) for line in as_json.stdout.splitlines()][1] == {
        "event_id": "far",
        "recorded_at": "+33658-01-01T01:00:00.000005+00:00",
        "day": "+33658-01-01",
    }
    out = tmp_path / "far.csv"
    as_csv = _run("query", _FAR, "--format", "csv", "-o", str(out), location=location)
    assert as_csv.returncode == 0, as_csv.stderr
    with out.open() as file:
        rows = [(r["event_id"], r["recorded_at"], r["day"]) for r in csv.DictReader(file)]
    assert rows == [
        ("near", "2024-01-01 01:00:00.000005Z", "2024-01-01"),  # Arrow's own text, as before
        ("far", "+33658-01-01T01:00:00.000005+00:00", "+33658-01-01"),
        ("farther", "+287168-01-01T01:00:00.000005+00:00", "+287168-01-01"),
    ]


def test_ctrl_c_while_the_server_commits_aborts_the_load_and_says_so(
    location, tmp_path, slow_commit, fd
):
    pq.write_table(pageviews(300), tmp_path / "events.parquet")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTDECK_")}
    load = subprocess.Popen(
        [*CLI, "load", str(tmp_path / "events.parquet"), "--location", location],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    assert slow_commit.reached.wait(60), "the load never reached the server's commit"
    load.send_signal(signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        load.wait(2)  # the interrupt is handled at once, not after the commit
    slow_commit.set()
    _, err = load.communicate(timeout=30)
    assert load.returncode == 130, err
    assert "interrupted: the put was aborted, nothing was committed" in err
    assert "committing" in err  # the bar shows the commit as its own phase
    assert fd.query("SELECT count(*) AS n FROM va_pageview_event").to_pylist() == [{"n": 0}]


@pytest.mark.slow  # the server finishes the cancelled query before it shuts down
def test_ctrl_c_cancels_a_running_query_at_once(loaded):
    # Four copies of 300 events: 8.1e9 rows, far longer than the test waits. A value
    # built from each row: DuckDB counts a cross join's rows without making them.
    sql = (
        "SELECT max(a.event_id || b.event_id || c.event_id || d.event_id) AS m "
        "FROM va_pageview_event a, va_pageview_event b, va_pageview_event c, va_pageview_event d"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTDECK_")}
    query = subprocess.Popen(
        [*CLI, "query", sql, "--location", loaded],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    time.sleep(2)  # started, and running on the server
    assert query.poll() is None, query.communicate()
    query.send_signal(signal.SIGINT)
    try:
        _, err = query.communicate(timeout=5)
    finally:
        query.kill()
    assert query.returncode == 130, err
    assert "interrupted: the query was cancelled" in err
