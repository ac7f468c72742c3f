"""The read targets of issue 17, judged from the query figures: met or missed, never asserted.

A target whose contender read other content than DoGet (checksum.py) is not
judged (met = None): a ratio between different results means nothing.
"""

from __future__ import annotations

from .measure import paired_ratio
from .target import target as _target

__all__ = ["query_targets"]

FIRST_BATCH_S = 0.020
RSS_LIMIT_MB = 300.0
SHARED_PAGES = "VmHWM includes shared library pages (RssFile before the read: {:.0f} MB)"


def _rows(n: int) -> str:
    return f"{n / 1e6:g} M rows" if n >= 1_000_000 else f"{n / 1e3:g} k rows"


def _judged(sizes: dict) -> list[int]:
    """The sizes the ratio targets speak of: 1 M rows and more, else the largest."""
    all_sizes = sorted(int(s) for s in sizes)
    return [s for s in all_sizes if s >= 1_000_000] or all_sizes[-1:]


def _ratio(entry: dict, name: str, goal: float, label: str, backend: str, size: int) -> dict:
    t = entry["times_s"]
    same = entry.get("content_same", {}).get(name)
    if name not in t:
        return _target(label, None, ">=", goal, backend=backend, rows=size, note="not measured")
    ratio = paired_ratio(t["doget"], t[name])
    value = ratio["median"] if same is not False else None
    note = "content differs from DoGet's: not judged" if same is False else ""
    detail = {"backend": backend, "rows": size, "spread": ratio, "warm": entry.get("warm")}
    return _target(label, value, ">=", goal, note=note, **detail)


def query_targets(query: dict) -> list[dict]:
    out: list[dict] = []
    for backend, sizes in query.items():
        if not sizes:
            continue
        for size in _judged(sizes):
            entry = sizes[str(size)]
            at = f"{backend}, {_rows(size)}, warm"
            out.append(
                _ratio(entry, "direct_adbc", 0.9, f"DoGet ≥ 0.9x direct ADBC ({at})", backend, size)
            )
            label = f"DoGet ≥ 0.7x in-memory Flight ceiling, one ceiling for both ({at})"
            out.append(_ratio(entry, "memory_flight", 0.7, label, backend, size))
        with_pandas = [int(n) for n, e in sizes.items() if "psycopg_pandas" in e["times_s"]]
        if with_pandas:
            # The largest read psycopg took part in (it sits out the 10 M-row one).
            size = max(with_pandas)
            entry = sizes[str(size)]
            at = f"{backend}, {_rows(size)}"
            label = f"DoGet ≥ 5x psycopg + pandas ({at})"
            out.append(_ratio(entry, "psycopg_pandas", 5.0, label, backend, size))
        size = max(int(s) for s in sizes)
        entry = sizes[str(size)]
        out += _first_batch(entry, backend, size)
        out.append(_rss(entry, backend, size))
    return out


def _first_batch(entry: dict, backend: str, size: int) -> list[dict]:
    out = []
    for name, label in (("doget", "DoGet"), ("flightsql", "Flight SQL via ADBC")):
        times = sorted(entry.get("first_batch_s", {}).get(name, []))
        p50 = times[len(times) // 2] * 1000 if times else None
        out.append(
            _target(
                f"{label} first batch ≤ 20 ms, p50 ({backend}, {_rows(size)})",
                p50,
                "<=",
                FIRST_BATCH_S * 1000,
                backend=backend,
                rows=size,
                unit="ms",
                rounds=len(times),
                note="10 M rows in the full run" if size < 10_000_000 else "",
            )
        )
    return out


def _rss(entry: dict, backend: str, size: int) -> dict:
    peaks = entry["server_peak_rss_mb"].get("doget", [])
    notes = []
    if entry.get("server_rss_file_mb") is not None:
        notes.append(SHARED_PAGES.format(entry["server_rss_file_mb"]))
    pg = entry.get("pg_backend_peak_mb", {}).get("doget", [])
    pss = [p["pss"] for p in pg if p.get("pss") is not None]
    if pss:
        notes.append(f"plus the PostgreSQL backend: PSS peak {max(pss):.0f} MB")
    if size < 10_000_000:
        notes.append("10 M rows in the full run")
    return _target(
        f"server peak RSS < 300 MB during the DoGet read ({backend}, {_rows(size)})",
        max(peaks) if peaks else None,
        "<",
        RSS_LIMIT_MB,
        backend=backend,
        rows=size,
        unit="MB",
        pg_backend_peak_pss_mb=max(pss) if pss else None,
        note="; ".join(notes),
    )
