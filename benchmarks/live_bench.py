"""Comparison 3: commit-to-subscriber latency of live updates, by subscriber count.

One flightdeck server per backend. Subscribers (benchmarks.subscriber, a few
processes, `_PER_STREAM` subscriptions multiplexed on each DoExchange stream,
docs/live.md, and many streams on each client connection) hold subscriptions
while this process runs DoPuts on an open-loop schedule
(`live_puts_per_s`, several put threads, so a slow put never delays the next
one's start), each for a page of its own (`/live/<run>/<i>`). Latency is
bracketed (live_stats.py): from the PutResult's arrival (after COMMIT: a lower
bound) and from the row's `computed_at` (the committing transaction's start: an
upper bound). All times are wall-clock times of the same machine. An update a
subscriber has not got `live_settle_s` after the last put is missing. Then the
same with one deliberately stalled subscriber, and a storm: `live_storm`
subscribers subscribing with a snapshot at once, timed until all have it.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.flight_server.nats_process import NatsProcess

from . import data
from .live_stats import Put, latency_figures, percentiles, schedule_figures
from .plan import Plan
from .postgres_server import PostgresServer
from .services import FlightdeckProcess
from .subscriber import raise_open_files_limit

__all__ = ["run_live_bench"]

log = logging.getLogger("benchmarks.live")
_EVENTS = flight.FlightDescriptor.for_path("events", "pageview")
# Subscriptions per client process (each process has its own GIL to decode with).
_PER_PROCESS = 2_500
_PER_STREAM = 100  # subscriptions multiplexed on one DoExchange stream (one thread each side)
_PER_CONNECTION = 100  # DoExchange streams multiplexed on one client connection
_PUT_THREADS = 4  # open-loop driver: a put may take up to 4 intervals before one starts late


def run_live_bench(plan: Plan, pg: PostgresServer, workdir: Path) -> dict:
    # Raised here so the server and subscriber processes inherit it.
    open_files = raise_open_files_limit()
    out: dict = {}
    for backend in plan.backends:
        out[backend] = _backend(plan, backend, pg, workdir / f"live-{backend}")
        out[backend]["setup"] |= {
            "open_files_limit": open_files,
            "subscribers_per_process": _PER_PROCESS,
            "subscriptions_per_stream": _PER_STREAM,
            "subscriptions_per_connection": _PER_CONNECTION,
            "put_threads": _PUT_THREADS,
            "settle_s": plan.live_settle_s,
        }
    return out


def _backend(plan: Plan, backend: str, pg: PostgresServer, workdir: Path) -> dict:
    """{"runs": {name: figures}, "storm": figures or None, "setup": how it was run}."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = str(workdir / "live.duckdb") if backend == "duckdb" else pg.create_database("bench_live")
    # The server's default --max-subscribers (1,000) would refuse the 10,000 run.
    biggest = max(*plan.live_subscribers, plan.live_stalled_with + 1, plan.live_storm)
    limit = str(biggest + 16)
    runs: dict = {}
    storm = None
    with (
        NatsProcess(workdir / "nats") as nats,
        FlightdeckProcess(db, nats.url, workdir / "server", "--max-subscribers", limit) as server,
    ):
        client = flight.connect(server.location)
        _put(client, "/live/warmup", 0)
        client.close()
        for count, stalled in _configs(plan):
            name = f"{count}+stalled" if stalled else str(count)
            runs[name] = _guarded(
                name,
                {"subscribers": count, "stalled": stalled},
                lambda c=count, s=stalled, n=name: _run(plan, server.location, c, s, n),
            )
        if plan.live_storm:
            time.sleep(2 * plan.live_settle_s)  # the last run's subscribers leave their slots
            storm = _guarded(
                "storm",
                {"subscribers": plan.live_storm},
                lambda: _storm(server.location, plan.live_storm),
            )
    return {"runs": runs, "storm": storm, "setup": {"max_subscribers": int(limit)}}


def _configs(plan: Plan) -> list[tuple[int, bool]]:
    """(subscribers, stalled) per run; the stalled run right after the plain run of its
    count, so the two it is judged by are measured as close together as they can be."""
    configs: list[tuple[int, bool]] = []
    for n in plan.live_subscribers:
        configs.append((n, False))
        if n == plan.live_stalled_with:
            configs.append((n, True))
    if (plan.live_stalled_with, True) not in configs:
        configs.append((plan.live_stalled_with, True))
    return configs


def _guarded(name: str, what: dict, run) -> dict:
    try:
        return run()
    except Exception as exc:  # one failed configuration must not lose the others
        log.exception("live %s failed", name)
        return what | {"error": repr(exc)}


def _process_sizes(count: int) -> list[int]:
    processes = max(1, math.ceil(count / _PER_PROCESS))
    return [count // processes + (1 if i < count % processes else 0) for i in range(processes)]


def _run(plan: Plan, location: str, count: int, stalled: bool, name: str) -> dict:
    procs = [_spawn(location, n) for n in _process_sizes(count)]
    if stalled:
        procs.append(_spawn(location, 1, "--stalled"))
    try:
        opening = time.perf_counter()
        _expect(procs, "ready")
        opened_s = time.perf_counter() - opening
        puts = _open_loop_puts(plan, location, name)
        time.sleep(plan.live_settle_s)  # the last updates' way to the subscribers
        arrivals: list[dict[str, float]] = []
        computed_at: dict[str, float] = {}
        for i, p in enumerate(procs):
            out, _ = p.communicate(input="", timeout=120)
            report = _last_json(out)
            computed_at |= report["computed_at"]
            if not (stalled and i == len(procs) - 1):  # the stalled one reads nothing by design
                arrivals += report["arrivals"]
    finally:
        _reap(procs)
    figures = latency_figures(puts, arrivals, computed_at)
    lat, upper = figures["latency_ms"], figures["latency_upper_ms"]
    log.info(
        "    live %s subscribers: %d puts at %s/s, p50 %s, p95 %s, p99 %s ms "
        "(from commit's transaction start: p99 %s ms), %d of %d missing",
        name,
        len(puts),
        _fmt(schedule_figures(puts, plan.live_puts_per_s)["puts_per_s"]),
        _fmt(lat["p50"]),
        _fmt(lat["p95"]),
        _fmt(lat["p99"]),
        _fmt(upper["p99"]),
        figures["missing"],
        figures["expected"],
    )
    return {
        "subscribers": count,
        "stalled": stalled,
        "subscribe_seconds": opened_s,
        "events_per_put": plan.live_events_per_put,
        **schedule_figures(puts, plan.live_puts_per_s),
        **figures,
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _storm(location: str, count: int) -> dict:
    """`count` subscribers subscribe with a snapshot at once: seconds until the last has it."""
    procs = [_spawn(location, n, "--storm") for n in _process_sizes(count)]
    try:
        _expect(procs, "armed")
        go = time.time()
        for p in procs:  # one line each; the processes take their own `go` time as well
            p.stdin.write("go\n")
            p.stdin.flush()
        reports = [_last_json(p.communicate(timeout=180)[0]) for p in procs]
    finally:
        _reap(procs)
    settled = [t for r in reports for t in r["settled"]]
    done = [t - go for t in settled if t is not None]
    errors = [e for r in reports for e in r["errors"]]
    result = {
        "subscribers": count,
        "settled": len(done),
        "failed": count - len(done),
        # Only when every subscriber has its snapshot is the storm settled.
        "settled_s": max(done) if len(done) == count else None,
        "snapshot_s": percentiles(done),
        "snapshot_rows": max((n for r in reports for n in r["rows"]), default=0),
        "go_skew_s": max(r["go"] for r in reports) - go,
        "errors": errors[:5],
    }
    log.info(
        "    live storm of %d: %d settled, last after %s s, %d failed",
        count,
        len(done),
        _fmt(result["settled_s"]),
        result["failed"],
    )
    return result


def _last_json(output: str):
    return json.loads(output.strip().splitlines()[-1])


def _spawn(location: str, count: int, *flags: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchmarks.subscriber", location, str(count)]
    cmd += ["--per-connection", str(_PER_CONNECTION), "--multiplex", str(_PER_STREAM)]
    return subprocess.Popen(
        [*cmd, *flags],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def _expect(procs: list[subprocess.Popen], word: str) -> None:
    for p in procs:
        line = p.stdout.readline()
        if line.strip() != word:
            raise RuntimeError(f"live subscriber process did not say {word!r}: {line!r}")


def _reap(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def _open_loop_puts(plan: Plan, location: str, name: str) -> list[Put]:
    """Put i is due at start + i / rate, whether or not earlier puts have returned:
    `_PUT_THREADS` threads, each on its own connection, take every Kth put."""
    count = max(1, round(plan.live_seconds * plan.live_puts_per_s))
    start = time.time() + 0.1  # every thread has its connection before the first is due
    puts: list[Put] = []
    threads = [
        threading.Thread(target=_put_thread, args=(plan, location, name, start, k, count, puts))
        for k in range(_PUT_THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(puts, key=lambda p: p.due)


def _put_thread(
    plan: Plan, location: str, name: str, start: float, first: int, count: int, puts: list[Put]
) -> None:
    client = flight.connect(location)
    try:
        for i in range(first, count, _PUT_THREADS):
            due = start + i / plan.live_puts_per_s
            if time.time() < due:
                time.sleep(due - time.time())
            page = f"/live/{name}/{i}"
            sent, result = _put(client, page, plan.live_events_per_put)
            puts.append(Put(page, due, sent, result))  # list.append is atomic under the GIL
    finally:
        client.close()


_put_counter = iter(range(10**9))  # event ids unique across threads (next() holds the GIL)


def _put(client: flight.FlightClient, page: str, events: int) -> tuple[float, float]:
    """One DoPut of `events` events for `page`: wall-clock times it was sent (its table
    built beforehand) and its PutResult arrived."""
    n = max(events, 1)
    table = data.events(n, start=next(_put_counter) * 1000, tag="live")
    table = table.set_column(2, "page_url", pa.array([page] * n))
    sent = time.time()
    writer, reader = client.do_put(_EVENTS, table.schema)
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    committed = time.time()
    writer.close()
    return sent, committed
