"""The live targets of issue 17, judged from the figures: met, missed or not measured.

A target is judged at its own subscriber count only: when that run is absent or
failed, it is not measured (met None), never read from another count. A missing
update fails a latency target whatever the percentiles say, since the
percentiles are over delivered updates. Latency is from the PutResult's arrival,
a lower bound of commit-to-subscriber (live_stats.py); the upper bound is given
beside it.
"""

from __future__ import annotations

__all__ = ["live_targets"]

_LOWER_BOUND = "from the PutResult's arrival: a lower bound of commit-to-subscriber latency"


def _judged(name: str, value, goal: str, met, **detail) -> dict:
    return {"name": name, "value": value, "goal": goal, "met": met, **detail}


def _run(runs: dict, name: str) -> tuple[dict | None, str]:
    run = runs.get(name)
    if run is None:
        return None, f"not measured: no {name}-subscriber run"
    if "error" in run:
        return None, f"not measured: the run failed ({run['error']})"
    return run, ""


def _latency(backend: str, runs: dict, count: int, figure: str, goal_ms: float) -> dict:
    name = f"live {figure} ≤ {goal_ms:g} ms at {count:,} subscribers, none missing ({backend})"
    run, why = _run(runs, str(count))
    if run is None:
        return _judged(name, None, f"<= {goal_ms:g}", None, backend=backend, unit="ms", note=why)
    value = run["latency_ms"][figure]
    met = value is not None and value <= goal_ms and run["missing"] == 0
    return _judged(
        name,
        value,
        f"<= {goal_ms:g}",
        met,
        backend=backend,
        unit="ms",
        missing=run["missing"],
        upper_bound=run["latency_upper_ms"][figure],
        note=_LOWER_BOUND,
    )


def _stalled(backend: str, runs: dict, count: int) -> dict:
    """p99 with one stalled subscriber over p99 without it, same count, as a % increase."""
    name = f"one stalled subscriber raises the others' p99 by ≤ 10 % ({backend}, {count:,})"
    plain, why = _run(runs, str(count))
    stalled, why_stalled = _run(runs, f"{count}+stalled")
    if plain is None or stalled is None:
        return _judged(name, None, "<= 10", None, backend=backend, note=why or why_stalled)
    before, after = plain["latency_ms"]["p99"], stalled["latency_ms"]["p99"]
    if before is None or after is None or before <= 0:
        return _judged(name, None, "<= 10", False, backend=backend, note="no p99 to compare")
    increase = (after / before - 1) * 100
    return _judged(
        name,
        increase,
        "<= 10",
        increase <= 10 and stalled["missing"] == 0,
        backend=backend,
        unit="%",
        missing=stalled["missing"],
        note="two separate runs, not interleaved rounds: their noise is in the figure",
    )


def _storm(backend: str, storm: dict | None, count: int) -> dict:
    name = f"a storm of {count:,} subscribers has its snapshots in < 2 s ({backend})"
    if storm is None or "error" in storm or storm["subscribers"] != count:
        why = "the storm failed" if storm and "error" in storm else f"no storm of {count:,}"
        return _judged(name, None, "< 2", None, backend=backend, unit="s", note=why)
    value = storm["settled_s"]
    met = value is not None and value < 2.0
    return _judged(name, value, "< 2", met, backend=backend, unit="s", failed=storm["failed"])


def live_targets(live: dict) -> list[dict]:
    out: list[dict] = []
    for backend, entry in live.items():
        runs = entry["runs"]
        out.append(_latency(backend, runs, 100, "p50", 5.0))
        out.append(_latency(backend, runs, 100, "p99", 50.0))
        out.append(_latency(backend, runs, 10_000, "p99", 250.0))
        out.append(_storm(backend, entry.get("storm"), 2_048))
        stalled_with = [int(n.split("+")[0]) for n in runs if n.endswith("+stalled")]
        out.append(_stalled(backend, runs, stalled_with[0] if stalled_with else 100))
    return out
