"""results.json (every raw figure) and results.md (medians, spreads, ratios, targets)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .measure import paired_ratio, summary

__all__ = ["write_json", "write_markdown"]

QUERY_LABELS = {
    "doget": "flightdeck DoGet (path descriptor)",
    "flightsql": "flightdeck Flight SQL (adbc_driver_flightsql)",
    "doget_pandas": "flightdeck DoGet → to_pandas()",
    "direct_adbc": "direct ADBC read of the store",
    "psycopg_pandas": "psycopg fetchall → pandas.DataFrame",
    "memory_flight": "in-memory pyarrow.flight server (ceiling)",
}
INGEST_LABELS = {
    "doput": "flightdeck DoPut (exact aggregates)",
    "raw_adbc_ingest": "raw adbc_ingest into a copy of the events table (ceiling)",
    "seed_worker": "seed-style worker: INSERT + upsert + commit per event",
}


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")


def _n(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if digits == 0 and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}" if digits else f"{x:,.0f}"


def _rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def _rows(n: int) -> str:
    return f"{n / 1e6:g} M" if n >= 1_000_000 else f"{n / 1e3:g} k"


def _spread(s: dict, fmt=_rate) -> str:
    return f"{fmt(s['min'])}-{fmt(s['max'])}"


def _ratio(s: dict) -> str:
    return f"{s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f})"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def write_markdown(results: dict, path: Path) -> None:
    meta = results["meta"]
    lines = [
        f"# flightdeck benchmarks — {meta['mode']} run",
        "",
        f"{meta['date']}; {meta['machine']['cpu']} x {meta['machine']['cores']} cores, "
        f"{meta['machine']['ram_gb']:.0f} GB RAM; Python {meta['python']}; "
        f"{meta['elapsed_s']:.0f} s. Each comparison interleaves its contenders "
        f"(A B A B …, one warm-up round first); figures are medians with min-max over "
        f"the rounds; ratios are the median of per-round ratios.",
        "",
        "## Targets",
        "",
        "| target | value | goal | met |",
        "|---|---|---|---|",
    ]
    for t in results["targets"]:
        value = t["value"]
        shown = "-" if value is None else f"{value:,.2f}" if value < 1000 else f"{value:,.0f}"
        if "spread" in t:
            shown += f" ({t['spread']['min']:.2f}-{t['spread']['max']:.2f})" if value < 1000 else ""
        met = {True: "**met**", False: "**missed**", None: "n/a"}[t["met"]]
        note = f" — {t['note']}" if t.get("note") else ""
        lines.append(f"| {t['name']}{note} | {shown} | {t['goal']} | {met} |")

    lines += ["", "## Query: read va_pageview_event as Arrow", ""]
    for backend, sizes in results.get("query", {}).items():
        lines += [
            f"### {backend}",
            "",
            "| rows | contender | median s | rows/s (min-max) | MB/s | DoGet ÷ contender |",
            "|---|---|---|---|---|---|",
        ]
        for size, entry in sorted(sizes.items(), key=lambda kv: int(kv[0])):
            doget = entry["times_s"]["doget"]
            for name, r in entry["rates"].items():
                ratio = (
                    "-" if name == "doget" else _ratio(paired_ratio(doget, entry["times_s"][name]))
                )
                lines.append(
                    f"| {_rows(int(size))} | {QUERY_LABELS.get(name, name)} | "
                    f"{r['seconds']['median']:.3f} | {_rate(r['rows_per_s']['median'])} "
                    f"({_spread(r['rows_per_s'])}) | {r['mb_per_s']['median']:.0f} | {ratio} |"
                )
        lines += ["", "Server RSS (MB) during reads, peak per round:", ""]
        for size, entry in sorted(sizes.items(), key=lambda kv: int(kv[0])):
            peaks = entry["server_peak_rss_mb"]
            parts = [f"{n} max {max(v):.0f}" for n, v in peaks.items() if v]
            before = entry.get("server_rss_before_mb")
            lines.append(
                f"- {_rows(int(size))} rows: before {before:.0f}; " + ", ".join(parts)
                if before
                else f"- {_rows(int(size))} rows: " + ", ".join(parts)
            )
            if capped := entry.get("capped_pool"):
                lines.append(
                    f"- {_rows(int(size))} rows, a server with `--duckdb-memory-limit "
                    f"{capped['limit']}`: before {capped['rss_before_mb']:.0f}; doget max "
                    f"{capped['peak_mb']:.0f} ({capped['seconds']:.2f} s)"
                )
        lines.append("")

    lines += ["## Ingest", ""]
    for backend, entry in results.get("ingest", {}).items():
        lines += [
            f"### {backend}",
            "",
            "| rows per load | contender | median s | rows/s (min-max) | DoPut ÷ contender |",
            "|---|---|---|---|---|",
        ]
        for size, sized in sorted(entry["doput_vs_size"].items(), key=lambda kv: int(kv[0])):
            times = sized["times_s"]
            for name, r in sized["rates"].items():
                rows = _rows(int(size))
                ratio = "-"
                if name == "seed_worker":
                    rows = f"{sized['seed_sample']} (sample)"
                if name != "doput":
                    # Speeds, not times: the seed worker loads a smaller sample per round.
                    count = sized["seed_sample"] if name == "seed_worker" else int(size)
                    speeds = [
                        (int(size) / a) / (count / b)
                        for a, b in zip(times["doput"], times[name], strict=True)
                    ]
                    ratio = _ratio(summary(speeds))
                lines.append(
                    f"| {rows} | {INGEST_LABELS.get(name, name)} | {r['seconds']['median']:.3f} | "
                    f"{_rate(r['rows_per_s']['median'])} ({_spread(r['rows_per_s'])}) | {ratio} |"
                )
        nats = entry.get("nats")
        if nats:
            lines += [
                "",
                f"NATS path, {nats['events']:,} JSON events per round, publish → all visible in "
                f"va_pageview_aggregate: {_rate(nats['rates']['rows_per_s']['median'])} events/s "
                f"({_spread(nats['rates']['rows_per_s'])}); the producer alone published "
                f"{_rate(nats['publish_rate']['median'])} msg/s.",
            ]
        lines.append("")

    lines += [
        "## Live: commit → subscriber latency (ms) under open-loop DoPut ingest",
        "",
        "From the PutResult's arrival (after COMMIT: a lower bound); *upper* is from the row's "
        "`computed_at` (the committing transaction's start: an upper bound). Missing: updates "
        "not arrived when the run ended; percentiles are over delivered ones.",
        "",
        "| backend | subscribers | puts/s (goal) | p50 | p95 | p99 | max | p99 upper | missing |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, entry in results.get("live", {}).items():
        for r in entry["runs"].values():
            if "error" in r:
                lines.append(f"| {backend} | {r['subscribers']} | failed: {r['error']} ||||||||")
                continue
            lat = r["latency_ms"]
            who = f"{r['subscribers']} + 1 stalled" if r["stalled"] else str(r["subscribers"])
            lines.append(
                f"| {backend} | {who} | {_ms(r['puts_per_s'])} ({r['puts_per_s_target']:g}) | "
                f"{_ms(lat['p50'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | {_ms(lat['max'])} | "
                f"{_ms(r['latency_upper_ms']['p99'])} | {r['missing']} of {r['expected']} |"
            )
    lines.append("")
    for backend, entry in results.get("live", {}).items():
        storm = entry.get("storm")
        if storm and "error" not in storm:
            settled = "-" if storm["settled_s"] is None else f"{storm['settled_s']:.2f}"
            lines.append(
                f"{backend}: {storm['subscribers']:,} subscribers subscribing with a snapshot at "
                f"once: all had it after {settled} s "
                f"({storm['settled']:,} settled, {storm['failed']:,} failed).  "
            )
        elif storm:
            lines.append(f"{backend}: the snapshot storm failed: {storm['error']}  ")
    lines += ["", "## Plots", ""]
    for plot in results.get("plots", []):
        lines.append(f"![{plot}]({plot})")
    path.write_text("\n".join(lines) + "\n")
