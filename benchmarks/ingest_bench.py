"""Comparison 2: the same events in, four ways, on both backends.

Contenders, interleaved round by round at each size:
- `doput`: flightdeck DoPut `["events","pageview"]` — validation, dedupe and exact
  aggregates, one transaction; timed from the call until the commit's PutResult;
- `raw_adbc_ingest`: ADBC bulk ingest of the same rows into a plain copy of the
  events table (same columns and keys, no aggregates) — the ceiling;
- `seed_worker` (at the largest size only, on a small sample): what a seed-style
  worker does, one INSERT per event and an aggregate upsert, a commit each.

Then, alone, the NATS path: JSON events published to JetStream, timed until all of
them count in `va_pageview_aggregate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
from flightdeck.flight_server.nats_process import NatsProcess

from . import data
from .measure import Timer, interleave, summary
from .plan import Plan
from .postgres_server import PostgresServer
from .record import rates
from .services import FlightdeckProcess

__all__ = ["run_ingest_bench"]

log = logging.getLogger("benchmarks.ingest")

_EVENTS = flight.FlightDescriptor.for_path("events", "pageview")
_TABLE_DDL = """CREATE TABLE {name} (
    event_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, page_url TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL, user_id TEXT, referrer TEXT, user_agent TEXT,
    duration_s DOUBLE PRECISION, properties JSON,
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP)"""
_SEED_AGGREGATE_DDL = """CREATE TABLE bench_seed_aggregate (
    page_url TEXT NOT NULL, date DATE NOT NULL, view_count BIGINT NOT NULL,
    unique_visitors BIGINT NOT NULL, computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (page_url, date))"""


def run_ingest_bench(plan: Plan, pg: PostgresServer, workdir: Path) -> dict:
    out: dict = {}
    for backend in plan.backends:
        out[backend] = _backend(plan, backend, pg, workdir / f"ingest-{backend}")
    return out


class _Days:
    """Each round loads a day of its own: a load of fresh events, as a daily batch is."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def take(self) -> dt.date:
        return dt.date(2023, 1, 1) + dt.timedelta(days=next(self._next))


def _backend(plan: Plan, backend: str, pg: PostgresServer, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    if backend == "duckdb":
        db = str(workdir / "ingest.duckdb")
        side_db = str(workdir / "side.duckdb")  # the server owns its file: others use a twin
    else:
        db = side_db = pg.create_database("bench_ingest")
    data.migrate(db, workdir)
    days = _Days()
    results: dict = {"doput_vs_size": {}}
    with (
        NatsProcess(workdir / "nats") as nats,
        FlightdeckProcess(db, nats.url, workdir / "server") as server,
        _side_connection(backend, side_db) as side,
    ):
        _create_side_tables(backend, side)
        client = flight.connect(server.location)
        for size in plan.ingest_sizes:
            largest = size == plan.ingest_sizes[-1]
            contenders = {
                "doput": _doput_contender(client, size, days),
                "raw_adbc_ingest": _raw_contender(backend, side, size, days),
            }
            if largest:
                contenders["seed_worker"] = _seed_contender(
                    backend, side_db, plan.seed_sample, days
                )
            log.info(
                "ingest %s %d rows: %d rounds of %s",
                backend,
                size,
                plan.runs,
                ", ".join(contenders),
            )
            times = interleave(contenders, plan.runs, log=lambda *a: log.info(*a))
            entry = {
                "rows": size,
                "times_s": times,
                "rates": {
                    name: rates(t, plan.seed_sample if name == "seed_worker" else size)
                    for name, t in times.items()
                },
            }
            if largest:
                entry["seed_sample"] = plan.seed_sample
            results["doput_vs_size"][str(size)] = entry
        results["nats"] = _nats_path(plan, client, nats.url, days)
        client.close()
    return results


# -- DoPut ---------------------------------------------------------------------------------


def _doput_contender(client: flight.FlightClient, size: int, days: _Days):
    def run(r: int) -> float:
        day = days.take()
        table = data.events(size, tag=f"p{day.isoformat()}", day=day)
        with Timer() as t:
            writer, reader = client.do_put(_EVENTS, table.schema)
            writer.write_table(table, max_chunksize=65_536)
            writer.done_writing()
            reply = json.loads(reader.read().to_pybytes())
        writer.close()
        if reply.get("accepted") != size:
            raise RuntimeError(f"DoPut accepted {reply}, expected {size}")
        return t.seconds

    return run


# -- the ceiling: ADBC bulk ingest into a plain copy of the events table ---------------------


@contextlib.contextmanager
def _side_connection(backend: str, db: str):
    if backend == "duckdb":
        import adbc_driver_duckdb.dbapi as duck

        conn = duck.connect(db)
    else:
        import adbc_driver_postgresql.dbapi as pg

        conn = pg.connect(db)
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _create_side_tables(backend: str, conn) -> None:
    with conn.cursor() as cursor:
        if backend == "postgresql":
            # The product's table with its keys and indexes: what a COPY into it costs.
            cursor.execute("CREATE TABLE bench_raw_event (LIKE tb_pageview_event INCLUDING ALL)")
        else:
            cursor.execute(_TABLE_DDL.format(name="bench_raw_event"))
        cursor.execute(_TABLE_DDL.format(name="bench_seed_event"))
        cursor.execute(_SEED_AGGREGATE_DDL)
        if backend == "postgresql":
            cursor.execute("CREATE INDEX ON bench_seed_event (page_url, recorded_at)")
    conn.commit()


def _raw_contender(backend: str, conn, size: int, days: _Days):
    # DuckDB 2.0's ADBC ingest takes at most one 2,048-row vector per batch (the
    # product's staging works around it the same way).
    chunk = 2048 if backend == "duckdb" else 65_536

    def run(r: int) -> float:
        day = days.take()
        table = data.events(size, tag=f"r{day.isoformat()}", day=day)
        now = pa.scalar(dt.datetime.now(dt.UTC), pa.timestamp("us", "UTC"))
        table = table.append_column("ingested_at", pc.if_else(True, now, table["recorded_at"]))
        with Timer() as t, conn.cursor() as cursor:
            cursor.adbc_ingest("bench_raw_event", table.to_reader(chunk), mode="append")
            conn.commit()
        return t.seconds

    return run


# -- the naive baseline: one statement per event, an upsert per event, a commit per event ----

_SEED_UPSERT = """
INSERT INTO bench_seed_aggregate (page_url, date, view_count, unique_visitors, computed_at)
SELECT {p}, {d}, count(*), count(DISTINCT session_id), CURRENT_TIMESTAMP
FROM bench_seed_event
WHERE page_url = {p} AND recorded_at >= {start} AND recorded_at < {end}
ON CONFLICT (page_url, date) DO UPDATE SET view_count = EXCLUDED.view_count,
    unique_visitors = EXCLUDED.unique_visitors, computed_at = EXCLUDED.computed_at"""
_SEED_INSERT = (
    "INSERT INTO bench_seed_event (event_id, session_id, page_url, recorded_at, user_id,"
    " referrer, user_agent, duration_s, properties) VALUES ({v}) ON CONFLICT DO NOTHING"
)


def _seed_contender(backend: str, db: str, sample: int, days: _Days):
    """A worker as a seed script writes it: per event, INSERT it, recount its page's day
    (views and distinct sessions only: fewer metrics than flightdeck keeps), commit."""
    if backend == "postgresql":
        import psycopg

        conn = psycopg.connect(db)
        mark = "%s"
    else:
        import duckdb

        conn = duckdb.connect(db)
        mark = "?"
    insert = _SEED_INSERT.format(v=", ".join([mark] * 9))
    upsert = _SEED_UPSERT.format(p=mark, d=mark, start=mark, end=mark)

    def run(r: int) -> float:
        day = days.take()
        rows = data.events(sample, tag=f"s{day.isoformat()}", day=day).to_pylist()
        with Timer() as t:
            for row in rows:
                values = [row[c] for c in data.EVENT_COLUMNS]
                start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
                cursor = conn.cursor()
                cursor.execute(insert, values)
                page = row["page_url"]
                cursor.execute(upsert, (page, day, page, start, start + dt.timedelta(days=1)))
                conn.commit()
        return t.seconds

    return run


# -- the NATS path --------------------------------------------------------------------------


def _nats_path(plan: Plan, client: flight.FlightClient, nats_url: str, days: _Days) -> dict:
    """Publish N JSON events as fast as a producer can; time until all count in the view."""
    n = plan.nats_events
    seconds, publish_seconds = [], []
    for r in range(plan.runs):
        day = days.take()
        tag = f"n{day.isoformat()}"
        table = data.events(n, tag=tag, day=day)
        pages = pc.binary_join_element_wise(f"/nats/{tag}", table["page_url"], "")
        table = table.set_column(2, "page_url", pages)
        messages = data.json_messages(table)
        sql = (
            "SELECT sum(view_count) AS n FROM va_pageview_aggregate "
            f"WHERE page_url LIKE '/nats/{tag}/%'"
        )
        started = time.perf_counter()
        published = asyncio.run(_publish(nats_url, messages)) - started
        deadline = started + max(120.0, n / 2000)
        while True:
            seen = _count(client, sql)
            if seen >= n:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"NATS path: {seen} of {n} events visible after the deadline")
            # Polling is a query the server must parse and run: often enough to time the
            # path to a few percent, rarely enough not to take the worker's GIL.
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        seconds.append(elapsed)
        publish_seconds.append(published)
        log.info(
            "    nats round %d: %d events visible in %.2fs (published in %.2fs) = %.0f/s",
            r + 1,
            n,
            elapsed,
            published,
            n / elapsed,
        )
    return {
        "events": n,
        "times_s": seconds,
        "publish_times_s": publish_seconds,
        "rates": rates(seconds, n),
        "publish_rate": summary([n / s for s in publish_seconds]),
    }


async def _publish(url: str, messages: list[bytes]) -> float:
    """Core-NATS publishes into the EVENTS stream (it captures `events.>`), then a flush:
    a fast producer, so that the worker, not the producer, is what is measured."""
    import nats

    nc = await nats.connect(url)
    try:
        for i, message in enumerate(messages):
            await nc.publish("events.pageview", message)
            if i % 5000 == 4999:
                await nc.flush()
        await nc.flush()
        return time.perf_counter()
    finally:
        await nc.close()


def _count(client: flight.FlightClient, sql: str) -> int:
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    value = client.do_get(info.endpoints[0].ticket).read_all().column(0)[0].as_py()
    return int(value or 0)
