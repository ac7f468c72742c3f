"""PNG plots (matplotlib, Agg): throughput and time against data size, live latency."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .report import INGEST_LABELS, QUERY_LABELS

__all__ = ["write_plots"]


def _series(entries: dict, name: str, figure: str, stat: str = "median"):
    sizes = sorted(int(s) for s in entries if name in entries[s]["rates"])
    values = [entries[str(s)]["rates"][name][figure] for s in sizes]
    return sizes, [v[stat] for v in values], [v["min"] for v in values], [v["max"] for v in values]


# One colour per contender on every panel.
COLOURS = {
    "doget": "tab:blue",
    "flightsql": "tab:orange",
    "doget_pandas": "tab:green",
    "direct_adbc": "tab:red",
    "psycopg_pandas": "tab:brown",
    "memory_flight": "tab:purple",
    "doput": "tab:blue",
    "raw_adbc_ingest": "tab:red",
}


def _errorbars(ax, sizes, mid, low, high, label, color=None):
    yerr = [
        [m - lo for m, lo in zip(mid, low, strict=True)],
        [hi - m for m, hi in zip(mid, high, strict=True)],
    ]
    ax.errorbar(sizes, mid, yerr=yerr, marker="o", capsize=3, label=label, color=color)


def write_plots(results: dict, out: Path) -> list[str]:
    written = []
    query = results.get("query", {})
    if query:
        fig, axes = plt.subplots(1, len(query), figsize=(6.5 * len(query), 4.8), squeeze=False)
        for ax, (backend, sizes) in zip(axes[0], query.items(), strict=True):
            names = list(next(iter(sizes.values()))["rates"])
            for name in names:
                _errorbars(
                    ax,
                    *_series(sizes, name, "rows_per_s"),
                    QUERY_LABELS.get(name, name),
                    COLOURS.get(name),
                )
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="rows in va_pageview_event",
                ylabel="rows/s (median, min-max)",
                title=f"Query throughput — {backend}",
            )
            _finish(ax)
        written.append(_saved(fig, out, "query_throughput.png"))

    ingest = results.get("ingest", {})
    if ingest:
        fig, axes = plt.subplots(1, len(ingest), figsize=(6.5 * len(ingest), 4.8), squeeze=False)
        for ax, (backend, entry) in zip(axes[0], ingest.items(), strict=True):
            sizes = entry["doput_vs_size"]
            for name in ("doput", "raw_adbc_ingest"):
                _errorbars(
                    ax, *_series(sizes, name, "rows_per_s"), INGEST_LABELS[name], COLOURS[name]
                )
            seed = [
                (int(s), e["rates"]["seed_worker"]["rows_per_s"])
                for s, e in sizes.items()
                if "seed_worker" in e["rates"]
            ]
            for _, r in seed:
                ax.axhline(
                    r["median"],
                    color="grey",
                    linestyle=":",
                    label=INGEST_LABELS["seed_worker"] + " (sample)",
                )
            nats = entry.get("nats")
            if nats:
                ax.axhline(
                    nats["rates"]["rows_per_s"]["median"],
                    color="purple",
                    linestyle="--",
                    label=f"NATS path ({nats['events']:,} events)",
                )
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="rows per load",
                ylabel="rows/s (median, min-max)",
                title=f"Ingest throughput — {backend}",
            )
            _finish(ax)
        written.append(_saved(fig, out, "ingest_throughput.png"))

    if any(e.get("growth") for e in ingest.values()):
        written.append(_rate_vs_stored(ingest, out))

    if query or ingest:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
        for backend, sizes in query.items():
            _errorbars(axes[0], *_series(sizes, "doget", "seconds"), f"DoGet — {backend}")
            _errorbars(
                axes[0], *_series(sizes, "direct_adbc", "seconds"), f"direct ADBC — {backend}"
            )
        axes[0].set(
            xscale="log",
            yscale="log",
            xlabel="rows read",
            ylabel="seconds",
            title="DoGet time vs data size",
        )
        for backend, entry in ingest.items():
            sizes = entry["doput_vs_size"]
            _errorbars(axes[1], *_series(sizes, "doput", "seconds"), f"DoPut — {backend}")
            _errorbars(
                axes[1],
                *_series(sizes, "raw_adbc_ingest", "seconds"),
                f"raw adbc_ingest — {backend}",
            )
        axes[1].set(
            xscale="log",
            yscale="log",
            xlabel="rows loaded",
            ylabel="seconds",
            title="DoPut time vs data size",
        )
        for ax in axes:
            _finish(ax)
        written.append(_saved(fig, out, "scaling.png"))

    live = results.get("live", {})
    if live:
        fig, ax = plt.subplots(figsize=(6.5, 4.8))
        for backend, entry in live.items():
            runs = entry["runs"]
            plain = sorted(
                (r["subscribers"], r["latency_ms"])
                for r in runs.values()
                if not r["stalled"] and "error" not in r
            )
            xs = [n for n, _ in plain]
            for q, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
                ax.plot(
                    xs, [lat[q] for _, lat in plain], style, marker="o", label=f"{q} — {backend}"
                )
            for r in runs.values():
                if r["stalled"] and "error" not in r:
                    ax.scatter(
                        [r["subscribers"]],
                        [r["latency_ms"]["p99"]],
                        marker="x",
                        s=60,
                        label=f"p99 with one stalled — {backend}",
                    )
        ax.axhline(50, color="red", alpha=0.4, label="target p99 50 ms at 100")
        ax.axhline(250, color="darkred", alpha=0.4, label="target p99 250 ms at 10,000")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="subscribers",
            ylabel="commit → arrival (ms)",
            title="Live update latency under steady ingest",
        )
        _finish(ax)
        written.append(_saved(fig, out, "live_latency.png"))
    return written


def _rate_vs_stored(ingest: dict, out: Path) -> str:
    """Rows/s against events already stored: one line per backend and path."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    styles = {"doput": "-", "raw_adbc_ingest": ":", "nats": "--"}
    labels = {"nats": "NATS path (push-timed)"}
    for backend, entry in ingest.items():
        steps = [entry["growth"][k] for k in sorted(entry.get("growth", {}), key=int)]
        stored = [s["stored_before"] for s in steps]
        for path, style in styles.items():
            rates = [s["nats"]["rates"] if path == "nats" else s["rates"][path] for s in steps]
            figures = [r["rows_per_s"] for r in rates]
            label = f"{labels.get(path) or INGEST_LABELS[path].split(' (')[0]} — {backend}"
            ax.errorbar(
                stored,
                [f["median"] for f in figures],
                yerr=[
                    [f["median"] - f["min"] for f in figures],
                    [f["max"] - f["median"] for f in figures],
                ],
                linestyle=style,
                marker="o",
                capsize=3,
                label=label,
            )
    ax.set(
        yscale="log",
        xlabel="events already stored",
        ylabel="rows/s (median, min-max)",
        title="Ingest rate as the store grows",
    )
    _finish(ax)
    return _saved(fig, out, "ingest_vs_stored.png")


def _finish(ax) -> None:
    """The grid and legend every plot shares."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _saved(fig, out: Path, name: str) -> str:
    """Write the figure as out/name, free it, and return the name for results.json."""
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name
