"""The parallel-folds benchmark still runs: both workloads, one and two writers, same events."""

from __future__ import annotations

import json

import pytest

from benchmarks.parallel_folds import WORKLOADS, main

pytestmark = pytest.mark.slow  # a PostgreSQL server and four fresh databases


def test_one_and_two_writers_store_the_same_events_in_each_workload(tmp_path):
    assert main(["--puts", "2", "--rows", "300", "--rounds", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "parallel-folds.json").read_text())
    for workload in WORKLOADS:
        (one,), (two,) = result["runs"][workload]["1"], result["runs"][workload]["2"]
        assert one["events"] == two["events"] > 0
        assert result["summary"][workload]["ratio"] > 0
