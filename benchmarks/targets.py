"""The targets of issue 7, judged from the figures: reported as met or missed, never asserted."""

from __future__ import annotations

from .live_targets import live_targets
from .measure import paired_ratio, summary

__all__ = ["evaluate"]


def _target(name: str, value: float | None, op: str, goal: float, **detail) -> dict:
    if value is None:
        met = None
    else:
        met = value >= goal if op == ">=" else value <= goal if op == "<=" else value < goal
    return {"name": name, "value": value, "goal": f"{op} {goal:g}", "met": met, **detail}


def _largest(entries: dict) -> tuple[int, dict] | None:
    if not entries:
        return None
    size = max(int(s) for s in entries)
    return size, entries[str(size)]


def _rows(n: int) -> str:
    return f"{n / 1e6:g} M rows" if n >= 1_000_000 else f"{n / 1e3:g} k rows"


def evaluate(results: dict) -> list[dict]:
    out: list[dict] = []
    query = results.get("query", {})
    for backend, sizes in query.items():
        largest = _largest(sizes)
        if largest is None:
            continue
        size, entry = largest
        t = entry["times_s"]
        at = _rows(size)
        ratio = paired_ratio(t["doget"], t["direct_adbc"])
        out.append(
            _target(
                f"DoGet ≥ 0.9x direct ADBC ({backend}, {at})",
                ratio["median"],
                ">=",
                0.9,
                backend=backend,
                rows=size,
                spread=ratio,
            )
        )
        with_pandas = [int(n) for n, e in sizes.items() if "psycopg_pandas" in e["times_s"]]
        if with_pandas:
            # The largest read psycopg took part in (it sits out the 10 M-row one).
            pandas_size = max(with_pandas)
            t = sizes[str(pandas_size)]["times_s"]
            at = _rows(pandas_size)
            ratio = paired_ratio(t["doget"], t["psycopg_pandas"])
            out.append(
                _target(
                    f"DoGet ≥ 5x psycopg + pandas ({backend}, {at})",
                    ratio["median"],
                    ">=",
                    5.0,
                    backend=backend,
                    rows=pandas_size,
                    spread=ratio,
                )
            )
            ratio = paired_ratio(t["doget_pandas"], t["psycopg_pandas"])
            out.append(
                _target(
                    f"DoGet then to_pandas() ≥ 5x psycopg + pandas, like for like "
                    f"({backend}, {at})",
                    ratio["median"],
                    ">=",
                    5.0,
                    backend=backend,
                    rows=pandas_size,
                    spread=ratio,
                )
            )
        t = entry["times_s"]
        at = _rows(size)
        if backend == "duckdb":
            ratio = paired_ratio(t["doget"], t["memory_flight"])
            out.append(
                _target(
                    f"DoGet ≥ 0.7x in-memory Flight ceiling ({backend}, {at})",
                    ratio["median"],
                    ">=",
                    0.7,
                    backend=backend,
                    rows=size,
                    spread=ratio,
                )
            )
        peaks = entry["server_peak_rss_mb"].get("doget", [])
        out.append(
            _target(
                f"server peak RSS < 300 MB during the DoGet read ({backend}, {at})",
                max(peaks) if peaks else None,
                "<",
                300.0,
                backend=backend,
                rows=size,
                unit="MB",
                note="10 M rows in the full run" if size < 10_000_000 else "",
            )
        )
    ingest = results.get("ingest", {})
    for backend, entry in ingest.items():
        largest = _largest(entry.get("doput_vs_size", {}))
        if largest is not None:
            size, sized = largest
            t = sized["times_s"]
            at = _rows(size)
            ratio = paired_ratio(t["doput"], t["raw_adbc_ingest"])
            out.append(
                _target(
                    f"DoPut ≥ 0.5x raw adbc_ingest ({backend}, {at})",
                    ratio["median"],
                    ">=",
                    0.5,
                    backend=backend,
                    rows=size,
                    spread=ratio,
                )
            )
            if "seed_worker" in t:
                # Rates, not times: the seed worker ingests a smaller sample each round.
                sample = sized["seed_sample"]
                speeds = [
                    (size / a) / (sample / b)
                    for a, b in zip(t["doput"], t["seed_worker"], strict=True)
                ]
                ratio = summary(speeds)
                out.append(
                    _target(
                        f"DoPut ≥ 50x seed-style worker ({backend}, {at} vs {sample} events)",
                        ratio["median"],
                        ">=",
                        50.0,
                        backend=backend,
                        spread=ratio,
                    )
                )
        nats = entry.get("nats")
        if nats:
            out.append(
                _target(
                    f"NATS path ≥ 50 k events/s with one worker ({backend})",
                    nats["rates"]["rows_per_s"]["median"],
                    ">=",
                    50_000.0,
                    backend=backend,
                    unit="events/s",
                    spread=nats["rates"]["rows_per_s"],
                )
            )
    out += live_targets(results.get("live", {}))
    return out
