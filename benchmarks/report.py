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


def _read_checks(size: int, entry: dict) -> list[str]:
    """First batch, content check, PostgreSQL backend memory and the ceiling's shape."""
    out = []
    firsts = entry.get("first_batch_s", {})
    if firsts:
        shown = ", ".join(f"{n} {summary(v)['median'] * 1000:.1f}" for n, v in firsts.items() if v)
        out.append(f"  - first batch, p50 ms: {shown}")
    same = entry.get("content_same")
    if same is not None:
        differ = [n for n, ok in same.items() if not ok]
        out.append(
            "  - content (checksum) differs from DoGet's: " + ", ".join(differ)
            if differ
            else "  - content (checksum) the same for every contender"
        )
    for name, peaks in entry.get("pg_backend_peak_mb", {}).items():
        pss = [p["pss"] for p in peaks if p.get("pss") is not None]
        rss = [p["rss"] for p in peaks if p.get("rss") is not None]
        if pss and rss:
            out.append(
                f"  - {name}: PostgreSQL backends ({peaks[0]['backends']}) peak PSS "
                f"{max(pss):.0f} MB, RSS {max(rss):.0f} MB (RSS counts shared buffers in full)"
            )
    if entry.get("server_rss_file_mb") is not None:
        out.append(
            f"  - server RSS and VmHWM include shared library pages: RssFile "
            f"{entry['server_rss_file_mb']:.0f} MB before the reads"
        )
    if ceiling := entry.get("ceiling"):
        out.append(
            f"  - ceiling: one table for both backends, messages by {ceiling['message_rule']}"
        )
    return out


def _growth_lines(entry: dict) -> list[str]:
    """Ingest rates as the store grows, the NATS worker's ceiling, the content checks."""
    growth = entry.get("growth") or {}
    lines = [
        "",
        "Growth (one realistic stream; each step first filled by DoPut):",
        "",
        "| events stored | DoPut rows/s | raw adbc_ingest rows/s | DoPut ÷ raw | "
        "NATS events/s (push-timed) | same content |",
        "|---|---|---|---|---|---|",
    ]
    for step in (growth[k] for k in sorted(growth, key=int)):
        r, t = step["rates"], step["times_s"]
        nats = step["nats"]["rates"]["rows_per_s"]
        lines.append(
            f"| {step['stored_before']:,} | {_rate(r['doput']['rows_per_s']['median'])} "
            f"({_spread(r['doput']['rows_per_s'])}) | "
            f"{_rate(r['raw_adbc_ingest']['rows_per_s']['median'])} | "
            f"{_ratio(paired_ratio(t['doput'], t['raw_adbc_ingest']))} | "
            f"{_rate(nats['median'])} ({_spread(nats)}) | {step['content']['same']} |"
        )
    workers = entry.get("nats_workers") or {}
    if workers:
        lines += [
            "",
            "| NATS workers (PostgreSQL) | events/s (until the consumer drained) |",
            "|---|---|",
        ]
        for count, path in workers.items():
            rate = path["rates"]["rows_per_s"]
            lines.append(f"| {count} | {_rate(rate['median'])} ({_spread(rate)}) |")
    ceiling = entry.get("nats_no_store")
    if ceiling:
        rate = ceiling["rates"]["rows_per_s"]
        lines += [
            "",
            f"NATS worker with a commit that stores nothing (its own ceiling), "
            f"{ceiling['events']:,} events per round: {_rate(rate['median'])} events/s "
            f"({_spread(rate)}).",
        ]
    return lines


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
        f"(A B A B …, one untimed warm-up round first for every contender at every size, "
        f"so all are compared warm); figures are medians with min-max over "
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
            lines += _read_checks(int(size), entry)
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
        lines += _growth_lines(entry)
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
