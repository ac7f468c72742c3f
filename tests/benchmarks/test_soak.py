"""The soak harness still works: a few seconds of every kind of load, then its exactness check."""

from __future__ import annotations

import json

import pytest

from benchmarks.soak import main

pytestmark = pytest.mark.slow  # a server, nats-server and two subscriber processes


def test_a_short_soak_samples_the_server_and_ends_exact(tmp_path):
    argv = ["--minutes", "0.1", "--subscribers", "10", "--sample-every", "2"]
    assert main([*argv, "--reaggregate-every", "2", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "soak-duckdb.json").read_text())
    assert result["exact"]["ok"], result["exact"]
    assert result["exact"]["raw_events"] == result["exact"]["expected_events"] > 0
    assert not result["errors"]
    samples = result["samples"]
    assert len(samples) >= 2
    assert all(s["rss_mb"] > 0 and s["fds"] > 0 for s in samples)
    # DuckDB's buffer pool, from the server's metrics: a part of its RSS.
    assert all(0 < s["store_mb"] < s["rss_mb"] for s in samples)
    summary = result["summary"]
    assert summary["puts"] > 0 and summary["queries"] > 0 and summary["events_published"] > 0
    assert summary["reaggregates"] >= 1
    assert summary["live_missing"] == 0
    assert any(s.get("live_p99_ms") is not None for s in samples)
