"""Comparison 3: commit-to-subscriber latency of live updates, by subscriber count.

One flightdeck server per backend. Subscribers (benchmarks.subscriber, threads in
a few processes) hold DoExchange subscriptions while this process runs DoPuts at
a steady rate, each for a page of its own (`/live/<run>/<i>`). A put's commit time
is when its PutResult arrives (the server replies after COMMIT); a subscriber's
arrival time is when the update row for that page reaches it. Both are wall-clock
times of the same machine. Then the same with one deliberately stalled subscriber.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.flight_server.nats_process import NatsProcess

from . import data
from .plan import Plan
from .postgres_server import PostgresServer
from .services import FlightdeckProcess

__all__ = ["run_live_bench"]

log = logging.getLogger("benchmarks.live")
_EVENTS = flight.FlightDescriptor.for_path("events", "pageview")
_PER_PROCESS = 250  # subscriber threads per client process


def run_live_bench(plan: Plan, pg: PostgresServer, workdir: Path) -> dict:
    out: dict = {}
    for backend in plan.backends:
        out[backend] = _backend(plan, backend, pg, workdir / f"live-{backend}")
    return out


def _backend(plan: Plan, backend: str, pg: PostgresServer, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    db = str(workdir / "live.duckdb") if backend == "duckdb" else pg.create_database("bench_live")
    limit = str(max(plan.live_subscribers) + 16)
    results: dict = {}
    with (
        NatsProcess(workdir / "nats") as nats,
        FlightdeckProcess(db, nats.url, workdir / "server", "--max-subscribers", limit) as server,
    ):
        client = flight.connect(server.location)
        _put(client, "/live/warmup", 0)
        configs = [(n, False) for n in plan.live_subscribers] + [(plan.live_stalled_with, True)]
        for count, stalled in configs:
            name = f"{count}+stalled" if stalled else str(count)
            try:
                results[name] = _run(plan, client, server.location, count, stalled, name)
            except Exception as exc:  # one failed configuration must not lose the others
                log.exception("live %s subscribers failed", name)
                results[name] = {"subscribers": count, "stalled": stalled, "error": repr(exc)}
        client.close()
    return results


def _run(
    plan: Plan, client: flight.FlightClient, location: str, count: int, stalled: bool, name: str
) -> dict:
    processes = max(1, math.ceil(count / _PER_PROCESS))
    sizes = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    procs = [_spawn(location, n, stalled=False) for n in sizes]
    if stalled:
        procs.append(_spawn(location, 1, stalled=True))
    try:
        opening = time.perf_counter()
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"live subscriber process did not get ready: {line!r}")
        opened_s = time.perf_counter() - opening
        commits = _steady_puts(plan, client, name)
        expected = set(commits)
        time.sleep(1.5)  # the last updates' way to the subscribers (p99 is far below this)
        arrivals = []
        for i, p in enumerate(procs):
            out, _ = p.communicate(input="", timeout=60)
            if stalled and i == len(procs) - 1:
                continue  # the stalled one received nothing by design
            arrivals += json.loads(out.strip().splitlines()[-1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    latencies = [
        (seen[page] - commits[page]) * 1000
        for seen in arrivals
        for page in expected
        if page in seen
    ]
    missing = len(arrivals) * len(expected) - len(latencies)
    summary = _percentiles(latencies)
    log.info(
        "    live %s subscribers: %d puts, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, %d missing",
        name,
        len(commits),
        summary["p50"],
        summary["p95"],
        summary["p99"],
        missing,
    )
    return {
        "subscribers": count,
        "stalled": stalled,
        "subscribe_seconds": opened_s,
        "puts": len(commits),
        "puts_per_s": len(commits) / plan.live_seconds,
        "events_per_put": plan.live_events_per_put,
        "latency_ms": summary,
        "deliveries": len(latencies),
        "missing": missing,
    }


def _spawn(location: str, count: int, stalled: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchmarks.subscriber", location, str(count)]
    return subprocess.Popen(
        cmd + (["--stalled"] if stalled else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def _steady_puts(plan: Plan, client: flight.FlightClient, name: str) -> dict[str, float]:
    """Put at `live_puts_per_s` for `live_seconds`; the commit time of each put's page."""
    commits: dict[str, float] = {}
    interval = 1.0 / plan.live_puts_per_s
    start = time.time()
    i = 0
    while time.time() - start < plan.live_seconds:
        due = start + i * interval
        if time.time() < due:
            time.sleep(due - time.time())
        page = f"/live/{name}/{i}"
        commits[page] = _put(client, page, plan.live_events_per_put)
        i += 1
    return commits


_put_counter = iter(range(10**9))


def _put(client: flight.FlightClient, page: str, events: int) -> float:
    n = max(events, 1)
    table = data.events(n, start=next(_put_counter) * 1000, tag="live")
    table = table.set_column(2, "page_url", pa.array([page] * n))
    writer, reader = client.do_put(_EVENTS, table.schema)
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    committed = time.time()
    writer.close()
    return committed


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {k: float("nan") for k in ("p50", "p95", "p99", "max", "min")} | {"n": 0}
    a = np.asarray(values)
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
        "min": float(a.min()),
        "n": len(values),
    }
