"""Joining parts measured in separate runs gives the report one run would have given."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from benchmarks.combine import combine

COMMITTED = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "results.json"


def _part(report: dict, parts: dict[str, list[str]], date: str, **plan) -> dict:
    """A results.json holding only `parts` ({part: backends}) of `report`."""
    run = {"meta": copy.deepcopy(report["meta"])}
    del run["meta"]["parts"]
    run["meta"]["date"] = date
    run["meta"]["plan"].update(plan)
    for part, backends in parts.items():
        run[part] = {b: copy.deepcopy(report[part][b]) for b in backends}
    return run


def test_split_parts_rejoin_to_the_same_targets():
    report = json.loads(COMMITTED.read_text())
    both = ["duckdb", "postgresql"]
    query_ingest = _part(report, {"query": both, "ingest": both}, "2026-01-01T00:00:00+00:00")
    live_duck = _part(report, {"live": ["duckdb"]}, "2026-01-02T00:00:00+00:00")
    live_pg = _part(
        report, {"live": ["postgresql"]}, "2026-01-03T00:00:00+00:00", live_subscribers=[1, 10]
    )

    combined = combine([query_ingest, live_duck, live_pg])

    assert combined["targets"] == report["targets"]
    parts = combined["meta"]["parts"]
    assert parts["query/duckdb"]["date"] == "2026-01-01T00:00:00+00:00"
    assert parts["live/duckdb"]["date"] == "2026-01-02T00:00:00+00:00"
    assert parts["live/postgresql"]["date"] == "2026-01-03T00:00:00+00:00"
    # The plan's live fields come from the last live part; the query fields are the first's.
    assert combined["meta"]["plan"]["live_subscribers"] == [1, 10]
    assert combined["meta"]["plan"]["query_sizes"] == report["meta"]["plan"]["query_sizes"]


def test_a_part_run_again_on_one_backend_keeps_the_others_figures():
    report = json.loads(COMMITTED.read_text())
    first = _part(report, {"query": ["duckdb", "postgresql"]}, "2026-01-01T00:00:00+00:00")
    again = _part(report, {"query": ["postgresql"]}, "2026-01-02T00:00:00+00:00")
    size = next(iter(again["query"]["postgresql"]))
    again["query"]["postgresql"][size]["marker"] = "second run"

    combined = combine([first, again])

    assert combined["query"]["duckdb"] == report["query"]["duckdb"]
    assert combined["query"]["postgresql"][size]["marker"] == "second run"
    assert combined["meta"]["parts"]["query/duckdb"]["date"] == "2026-01-01T00:00:00+00:00"
    assert combined["meta"]["parts"]["query/postgresql"]["date"] == "2026-01-02T00:00:00+00:00"


def test_a_combined_report_joined_again_keeps_each_parts_date():
    report = json.loads(COMMITTED.read_text())
    again = _part(report, {"query": ["duckdb"]}, "2026-01-09T00:00:00+00:00")

    combined = combine([report, again])

    parts = combined["meta"]["parts"]
    assert parts["query/duckdb"]["date"] == "2026-01-09T00:00:00+00:00"
    for key in ("query/postgresql", "ingest/duckdb", "live/duckdb", "live/postgresql"):
        assert parts[key] == report["meta"]["parts"][key]
