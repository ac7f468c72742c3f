"""The live benchmark's pure logic: latency bounds, missing updates, and how targets judge them."""

from __future__ import annotations

from benchmarks.live_stats import Put, latency_figures, schedule_figures
from benchmarks.live_targets import live_targets


def _puts() -> list[Put]:
    return [Put(f"/live/t/{i}", due=10.0 + i, sent=10.0 + i, result=10.1 + i) for i in range(3)]


def test_latency_is_bracketed_by_put_result_and_transaction_start():
    arrivals = [{p.page: p.result + 0.002 for p in _puts()}]
    committed = {p.page: p.result - 0.05 for p in _puts()}
    figures = latency_figures(_puts(), arrivals, committed)
    assert round(figures["latency_ms"]["p50"], 6) == 2.0
    assert round(figures["latency_upper_ms"]["p50"], 6) == 52.0
    assert figures["missing"] == 0
    assert figures["expected"] == 3


def test_an_update_never_arrived_is_missing_not_dropped():
    arrivals = [{"/live/t/0": 10.2}, {}]
    figures = latency_figures(_puts(), arrivals, {})
    assert figures["missing"] == 5
    assert figures["deliveries"] == 1
    assert figures["latency_upper_ms"]["p99"] is None


def test_schedule_reports_the_achieved_rate_and_lateness():
    puts = [Put(f"/p/{i}", due=i * 0.1, sent=i * 0.2, result=i * 0.2 + 0.01) for i in range(5)]
    figures = schedule_figures(puts, 10.0)
    assert round(figures["puts_per_s"], 6) == 5.0
    assert round(figures["late_ms"]["max"], 6) == 400.0


def _run(p50: float, p99: float, missing: int = 0, stalled: bool = False) -> dict:
    latency = {"p50": p50, "p95": p99, "p99": p99, "max": p99, "min": p50, "n": 10}
    return {
        "subscribers": 100,
        "stalled": stalled,
        "latency_ms": latency,
        "latency_upper_ms": latency,
        "missing": missing,
    }


def _by_name(targets: list[dict]) -> dict[str, dict]:
    return {t["name"].split(" (")[0]: t for t in targets}


def test_a_missing_update_fails_a_latency_target_that_percentiles_meet():
    live = {"duckdb": {"runs": {"100": _run(1.0, 10.0, missing=1)}, "storm": None}}
    judged = _by_name(live_targets(live))
    assert judged["live p50 ≤ 5 ms at 100 subscribers, none missing"]["met"] is False
    assert judged["live p99 ≤ 50 ms at 100 subscribers, none missing"]["met"] is False


def test_a_target_without_its_own_count_is_not_measured():
    live = {"duckdb": {"runs": {"10": _run(1.0, 10.0), "1000": _run(1.0, 10.0)}, "storm": None}}
    judged = _by_name(live_targets(live))
    for name in (
        "live p99 ≤ 50 ms at 100 subscribers, none missing",
        "live p99 ≤ 250 ms at 10,000 subscribers, none missing",
        "a storm of 2,048 subscribers has its snapshots in < 2 s",
    ):
        assert judged[name]["met"] is None
        assert judged[name]["value"] is None


def test_the_stalled_subscriber_target_compares_p99_at_the_same_count():
    runs = {"100": _run(1.0, 20.0), "100+stalled": _run(1.0, 23.0, stalled=True)}
    (stalled,) = [t for t in live_targets({"pg": {"runs": runs}}) if "stalled" in t["name"]]
    assert round(stalled["value"], 6) == 15.0
    assert stalled["met"] is False
