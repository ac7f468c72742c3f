"""The baseline comparison: ratios to the same plan's figures, flags only outside the spread."""

from __future__ import annotations

import pytest

from benchmarks.baseline import compare, load_baseline, save_baseline

PLAN = {"name": "quick", "query_sizes": (100_000, 1_000_000)}


def _results(value: float, low: float, high: float, *, rss: float = 250.0) -> dict:
    spread = {"median": value, "min": low, "max": high}
    return {
        "meta": {"mode": "quick", "date": "2026-11-28T08:00:00+00:00", "machine": {}, "plan": PLAN},
        "targets": [
            {
                "name": "DoGet ≥ 0.9x",
                "value": value,
                "goal": ">= 0.9",
                "met": True,
                "spread": spread,
            },
            {"name": "peak RSS", "value": rss, "goal": "< 300", "met": True},
        ],
    }


@pytest.fixture
def baseline(tmp_path):
    path = tmp_path / "baseline.json"
    save_baseline(_results(1.0, 0.9, 1.1), path)
    return path


def _verdicts(results: dict, path) -> dict[str, tuple]:
    stored = load_baseline(path, "quick", PLAN)
    return {r["name"]: (r["verdict"], r.get("ratio")) for r in compare(results, stored)}


def test_a_change_within_the_spread_is_not_flagged(baseline):
    verdict, ratio = _verdicts(_results(1.05, 0.95, 1.15), baseline)["DoGet ≥ 0.9x"]
    assert verdict == "within spread" and ratio == pytest.approx(1.05)


@pytest.mark.parametrize(("now", "flag"), [((0.6, 0.5, 0.7), "LOWER"), ((1.5, 1.2, 1.8), "HIGHER")])
def test_a_change_beyond_both_spreads_is_flagged(baseline, now, flag):
    assert _verdicts(_results(*now), baseline)["DoGet ≥ 0.9x"][0] == flag


def test_a_single_figure_shows_its_change_without_a_flag(baseline):
    verdict, ratio = _verdicts(_results(1.0, 0.9, 1.1, rss=500.0), baseline)["peak RSS"]
    assert verdict == "no spread" and ratio == pytest.approx(2.0)


def test_saving_one_plan_keeps_the_other(baseline):
    full = _results(1.0, 0.9, 1.1)
    full["meta"] = {**full["meta"], "mode": "full"}
    save_baseline(full, baseline)
    assert load_baseline(baseline, "quick", PLAN)["targets"]


def test_a_run_of_another_plan_is_refused(baseline):
    with pytest.raises(ValueError, match="plan differs"):
        load_baseline(baseline, "quick", {**PLAN, "query_sizes": (5_000,)})
    with pytest.raises(ValueError, match="no full run"):
        load_baseline(baseline, "full", PLAN)
