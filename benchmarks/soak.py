"""The soak: `python -m benchmarks soak --minutes M [--backend duckdb|postgresql]`.

One `flightdeck serve` (its own nats-server, and PostgreSQL with --backend
postgresql) under mixed load for M minutes: paced DoPuts, JetStream publishes,
queries, `--subscribers` live subscribers multiplexed on one stream plus one
that never reads, and a `reaggregate` action every few minutes. Every
`--sample-every` seconds it notes the server's RSS and open file descriptors
(/proc/PID/status, /proc/PID/fd) and the window's p99 put and query latency;
live latency (PutResult to a subscriber's arrival) is bucketed by the put's
window at the end, from the subscribers' own arrival times. At the end it waits
for every acknowledged event to be counted and checks exactness: raw count =
sum of the daily aggregate, and `reaggregate --check` finds nothing to change.
Writes soak-<backend>.json and .png to benchmarks/results/<date>-soak/.
The goal is flat RSS, fds and p99s. Not in CI (a test runs it for seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.flight_server.nats_process import NatsProcess
from prometheus_client.parser import text_string_to_metric_families

from . import data
from .live_stats import percentiles
from .postgres_server import DURABLE, PostgresServer, free_port
from .services import FlightdeckProcess, rss_mb
from .stream import json_messages
from .subscriber import raise_open_files_limit

__all__ = ["main"]

log = logging.getLogger("benchmarks.soak")
_EVENTS = flight.FlightDescriptor.for_path("events", "pageview")
_QUERIES = (
    "SELECT page_url, sum(view_count) AS views FROM va_pageview_aggregate "
    "GROUP BY page_url ORDER BY views DESC LIMIT 10",
    "SELECT count(*) AS n FROM va_pageview_hourly",
)
_EVENTS_PER_PUT = 50
_EVENTS_PER_PUBLISH = 100
_SETTLE_S = 120.0  # how long the end waits for the last events to be counted


@dataclass
class _Load:
    """What the load threads did, shared with the sampler (list.append holds the GIL)."""

    stop: threading.Event = field(default_factory=threading.Event)
    puts: list = field(default_factory=list)  # (page, committed wall time, latency s)
    queries: list = field(default_factory=list)  # (finished wall time, latency s)
    accepted: int = 0  # events the server stored (DoPut says so)
    published: int = 0  # events JetStream acknowledged as new
    reaggregates: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks soak")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--backend", choices=("duckdb", "postgresql"), default="duckdb")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds")
    parser.add_argument("--reaggregate-every", type=float, default=180.0, help="seconds")
    parser.add_argument("--puts-per-s", type=float, default=2.0)
    parser.add_argument("--publishes-per-s", type=float, default=2.0)
    parser.add_argument("--queries-per-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = args.out or Path("benchmarks/results") / f"{dt.date.today().isoformat()}-soak"
    out.mkdir(parents=True, exist_ok=True)
    raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="flightdeck-soak-") as workdir:
        result = _soak(args, Path(workdir))
    result["plot"] = _plot(result, out / f"soak-{args.backend}.png")
    (out / f"soak-{args.backend}.json").write_text(json.dumps(result, indent=2))
    log.info("soak %s: %s", "exact" if result["exact"]["ok"] else "NOT EXACT", result["summary"])
    return 0 if result["exact"]["ok"] and not result["errors"] else 1


def _soak(args: argparse.Namespace, workdir: Path) -> dict:
    postgres = args.backend == "postgresql"
    with PostgresServer(DURABLE, prefix="flightdeck-soak-pg-") if postgres else nullcontext() as pg:
        db = pg.create_database("soak") if pg else str(workdir / "soak.duckdb")
        limit = str(args.subscribers + 16)
        metrics_port = free_port()
        options = ("--max-subscribers", limit, "--http-port", "0")
        options += ("--metrics-port", str(metrics_port))
        with (
            NatsProcess(workdir / "nats") as nats,
            FlightdeckProcess(db, nats.url, workdir / "server", *options) as server,
        ):
            return _run(args, server, nats.url, f"http://127.0.0.1:{metrics_port}/metrics")


def _run(
    args: argparse.Namespace, server: FlightdeckProcess, nats_url: str, metrics_url: str
) -> dict:
    subscribers = _spawn(server.location, args.subscribers, "--multiplex", "100")
    stalled = _spawn(server.location, 1, "--stalled")
    load = _Load()
    try:
        for p in (subscribers, stalled):
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"subscriber process said {line!r}, not 'ready'")
        threads = _start_load(args, server.location, nats_url, load)
        started = time.time()
        samples = _sample(args, server.pid, metrics_url, load, started)
        load.stop.set()
        for t in threads:
            t.join(120)
        exact = _exactness(server.location, load)
        arrivals = _arrivals(subscribers)
    finally:
        for p in (subscribers, stalled):
            if p.poll() is None:
                p.kill()
                p.wait()
    live = _live_windows(load.puts, arrivals, started, args.sample_every)
    for sample, window in zip(samples, live, strict=False):
        sample["live_p99_ms"] = window
    return {
        "meta": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "backend": args.backend,
            "minutes": args.minutes,
            "subscribers": args.subscribers,
            "stalled_subscribers": 1,
            "rates_per_s": {
                "puts": args.puts_per_s,
                "publishes": args.publishes_per_s,
                "queries": args.queries_per_s,
            },
            "events_per_put": _EVENTS_PER_PUT,
            "events_per_publish": _EVENTS_PER_PUBLISH,
            "cores": os.cpu_count(),
        },
        "samples": samples,
        "reaggregates": load.reaggregates,
        "exact": exact,
        "errors": load.errors[:20],
        "summary": _summary(samples, load, arrivals),
    }


def _spawn(location: str, count: int, *flags: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchmarks.subscriber", location, str(count), *flags]
    return subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def _start_load(args, location: str, nats_url: str, load: _Load) -> list[threading.Thread]:
    bodies = [
        (_putter, args.puts_per_s),
        (_publisher, args.publishes_per_s),
        (_querier, args.queries_per_s),
    ]
    threads = [
        threading.Thread(target=_guard, args=(body, load, location, nats_url, rate), daemon=True)
        for body, rate in bodies
    ]
    threads.append(
        threading.Thread(
            target=_guard,
            args=(_reaggregator, load, location, nats_url, 1 / args.reaggregate_every),
            daemon=True,
        )
    )
    for t in threads:
        t.start()
    return threads


def _guard(body, load: _Load, location: str, nats_url: str, rate: float) -> None:
    try:
        body(load, location, nats_url, rate)
    except Exception as exc:  # a load thread that dies is a finding, not a crash of the soak
        log.exception("%s failed", body.__name__)
        load.errors.append(f"{body.__name__}: {exc!r}")


def _paced(load: _Load, rate: float):
    """Yields 0, 1, … at `rate` per second until the soak stops (late ticks are not made up)."""
    n, start = 0, time.monotonic()
    while not load.stop.is_set():
        yield n
        n += 1
        due = start + n / rate
        if load.stop.wait(max(0.0, due - time.monotonic())):
            return


def _putter(load: _Load, location: str, nats_url: str, rate: float) -> None:
    client = flight.connect(location)
    for n in _paced(load, rate):
        page = f"/live/soak/{n}"
        table = data.events(_EVENTS_PER_PUT, start=n * _EVENTS_PER_PUT, tag="soak-put")
        table = table.set_column(2, "page_url", pa.array([page] * _EVENTS_PER_PUT))
        began = time.perf_counter()
        writer, reader = client.do_put(_EVENTS, table.schema)
        writer.write_table(table)
        writer.done_writing()
        reply = json.loads(reader.read().to_pybytes())
        writer.close()
        load.puts.append((page, time.time(), time.perf_counter() - began))
        load.accepted += reply["accepted"]
    client.close()


def _publisher(load: _Load, location: str, nats_url: str, rate: float) -> None:
    asyncio.run(_publish(load, nats_url, rate))


async def _publish(load: _Load, nats_url: str, rate: float) -> None:
    import nats

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        n, start = 0, time.monotonic()
        while not load.stop.is_set():
            table = data.events(_EVENTS_PER_PUBLISH, start=n * _EVENTS_PER_PUBLISH, tag="soak-nats")
            ids = table.column("event_id").to_pylist()
            for event_id, message in zip(ids, json_messages(table), strict=True):
                ack = await js.publish(
                    "events.pageview", message, headers={"Nats-Msg-Id": event_id}
                )
                load.published += 0 if ack.duplicate else 1
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    finally:
        await nc.close()


def _querier(load: _Load, location: str, nats_url: str, rate: float) -> None:
    client = flight.connect(location)
    for n in _paced(load, rate):
        began = time.perf_counter()
        _query(client, _QUERIES[n % len(_QUERIES)])
        load.queries.append((time.time(), time.perf_counter() - began))
    client.close()


def _query(client: flight.FlightClient, sql: str) -> pa.Table:
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    return client.do_get(info.endpoints[0].ticket).read_all()


def _reaggregator(load: _Load, location: str, nats_url: str, rate: float) -> None:
    client = flight.connect(location)
    ticks = _paced(load, rate)
    next(ticks, None)  # the first after one interval, not at the start
    for _ in ticks:
        load.reaggregates.append(_reaggregate(client, check=False))
    client.close()


def _reaggregate(client: flight.FlightClient, check: bool) -> dict:
    body = json.dumps({"all": True, "check": check}).encode()
    began = time.perf_counter()
    (reply,) = client.do_action(flight.Action("reaggregate", body))
    summary = json.loads(reply.body.to_pybytes())
    return {"at": time.time(), "seconds": time.perf_counter() - began} | summary


def _sample(args, pid: int, metrics_url: str, load: _Load, started: float) -> list[dict]:
    """One sample per interval until the soak's minutes are up."""
    samples: list[dict] = []
    end = started + args.minutes * 60
    seen_puts = seen_queries = 0
    while time.time() < end:
        time.sleep(min(args.sample_every, max(0.0, end - time.time())))
        puts, queries = load.puts[seen_puts:], load.queries[seen_queries:]
        seen_puts, seen_queries = seen_puts + len(puts), seen_queries + len(queries)
        samples.append(
            {
                "t_s": time.time() - started,
                "rss_mb": rss_mb(pid),
                "store_mb": _store_mb(metrics_url),
                "fds": _open_fds(pid),
                "put_p99_ms": _p99_ms([p[2] for p in puts]),
                "query_p99_ms": _p99_ms([q[1] for q in queries]),
                "puts": len(puts),
                "queries": len(queries),
            }
        )
        log.info("soak %s", samples[-1])
    return samples


def _store_mb(metrics_url: str) -> float | None:
    """DuckDB's own account of its buffer pool in the server (None on PostgreSQL),
    so the RSS curve can be split into the store's cache and the rest."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        if family.name == "flightdeck_store_memory_bytes" and family.samples:
            return family.samples[0].value / 1e6
    return None


def _open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _p99_ms(seconds: list[float]) -> float | None:
    p99 = percentiles(seconds)["p99"]
    return None if p99 is None else p99 * 1000


def _exactness(location: str, load: _Load) -> dict:
    """Waits until every acknowledged event is counted; then the aggregates against raw
    events, and reaggregate's check."""
    client = flight.connect(location)
    expected = load.accepted + load.published
    deadline = time.monotonic() + _SETTLE_S
    while True:
        raw = _query(client, "SELECT count(*) AS n FROM va_pageview_event")["n"][0].as_py()
        if raw >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    total = _query(client, "SELECT sum(view_count) AS n FROM va_pageview_aggregate")
    daily = int(total["n"][0].as_py() or 0)
    check = _reaggregate(client, check=True)
    client.close()
    ok = (
        raw == expected and daily == raw and not (check["daily_changed"] or check["hourly_changed"])
    )
    return {
        "ok": ok,
        "expected_events": expected,
        "raw_events": raw,
        "aggregate_views": daily,
        "reaggregate_check": check,
    }


def _arrivals(subscribers: subprocess.Popen) -> list[dict[str, float]]:
    out, _ = subscribers.communicate(input="", timeout=300)
    return json.loads(out.strip().splitlines()[-1])["arrivals"]


def _live_windows(puts: list, arrivals: list[dict], started: float, every: float) -> list:
    """p99 ms (PutResult to arrival, every subscriber) of the puts of each sample window."""
    windows: dict[int, list[float]] = {}
    for page, committed, _ in puts:
        got = [a[page] - committed for a in arrivals if page in a]
        windows.setdefault(int((committed - started) // every), []).extend(got)
    last = max(windows, default=-1)
    return [_p99_ms([max(0.0, s) for s in windows.get(i, [])]) for i in range(last + 1)]


def _summary(samples: list[dict], load: _Load, arrivals: list[dict]) -> dict:
    def spread(key: str) -> dict:
        values = [s[key] for s in samples if s.get(key) is not None]
        if not values:
            return {}
        half = max(1, len(values) // 2)
        return {
            "first": values[0],
            "last": values[-1],
            "max": max(values),
            "median_first_half": sorted(values[:half])[half // 2],
            "median_second_half": sorted(values[half:] or values)[len(values[half:]) // 2],
        }

    missing = sum(1 for page, _, _ in load.puts for a in arrivals if page not in a)
    return {
        "puts": len(load.puts),
        "queries": len(load.queries),
        "events_put": load.accepted,
        "events_published": load.published,
        "reaggregates": len(load.reaggregates),
        "live_missing": missing,
        **{
            k: spread(k)
            for k in ("rss_mb", "store_mb", "fds", "put_p99_ms", "query_p99_ms", "live_p99_ms")
        },
    }


def _plot(result: dict, path: Path) -> str | None:
    try:
        import matplotlib
    except ImportError:  # the bench extra is not installed: the JSON holds every figure
        log.warning("no plot: matplotlib is missing (pip install 'flightdeck[bench]')")
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    axes[0].plot(minutes, [s["rss_mb"] for s in samples], marker=".", label="server RSS")
    store = [s.get("store_mb") for s in samples]
    if any(v is not None for v in store):
        axes[0].plot(
            minutes,
            [v if v is not None else float("nan") for v in store],
            label="of it, DuckDB's buffer pool",
        )
        axes[0].legend()
    axes[0].set_ylabel("MB")
    axes[1].plot(minutes, [s["fds"] for s in samples], marker=".", color="tab:orange")
    axes[1].set_ylabel("open fds")
    for key, label in (("put_p99_ms", "put"), ("query_p99_ms", "query"), ("live_p99_ms", "live")):
        values = [s.get(key) for s in samples]
        axes[2].plot(minutes, [v if v is not None else float("nan") for v in values], label=label)
    axes[2].set_ylabel("p99 latency (ms)")
    axes[2].set_yscale("log")
    axes[2].legend()
    axes[2].set_xlabel("minutes")
    meta = result["meta"]
    fig.suptitle(
        f"soak: {meta['backend']}, {meta['subscribers']} live subscribers + 1 stalled, "
        f"{meta['minutes']:g} min"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name
