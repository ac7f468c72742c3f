"""Comparison 2: the same events in, several ways, on both backends, as the store grows.

Every contender is fed consecutive chunks of ONE realistic stream (`stream.py`):
sessions continue across puts and NATS batches, some events arrive late, some
are resent. The flightdeck store and the ceiling's side table each follow their
own cursor over the same stream in lockstep, so both hold the same events, which
is checked (`content.py`) at every step.

Contenders, interleaved round by round:
- `doput`: flightdeck DoPut `["events","pageview"]` — validation, dedupe and exact
  aggregates, one transaction; timed from the call until the commit's PutResult;
- `raw_adbc_ingest`: ADBC bulk ingest of the same chunk's first sends (it cannot
  dedupe: the resent rows are left out for it) into a plain copy of the events table
  (same columns and keys, no aggregates) — the ceiling. On DuckDB its engine gets
  flightdeck's checkpoint threshold, so both pay checkpoints alike;
- `seed_worker` (at the largest put size only, on a small sample of its own
  stream): one INSERT per event and an aggregate upsert, a commit each.

Growth: at each step of `ingest_stored` the store is first filled up to that many
events through flightdeck's own DoPut (big puts, `preload_put_rows` each: slow,
but exactly the state flightdeck makes; its time is recorded), the side table
through adbc_ingest; then DoPut against raw and the NATS path are timed there.

The NATS path: the stream's JSON events published to JetStream, timed until a
final marker event's aggregate row reaches a live subscriber (`commit_watch.py`),
then checked off the clock: every new event stored. And its ceiling: the same
worker with a commit that stores nothing (`noop_worker.py`). On PostgreSQL the NATS
path is timed again with 1, 2 and 4 workers (`flightdeck ingest` processes beside
the server's own) at the last growth step; a round there ends when the marker has
arrived and the consumer holds nothing unacked (polled every 20 ms), since with
several workers the last event may commit before earlier ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
from flightdeck.flight_server.nats_process import NatsProcess
from flightdeck.ingest.nats_worker import DURABLE
from flightdeck.views.store import DUCKDB_CHECKPOINT_THRESHOLD

from . import data, stream
from .commit_watch import MARKER_PREFIX, CommitWatch
from .content import flight_checksum, flight_rows, side_checksum
from .measure import Timer, interleave, summary
from .noop_worker import NoStoreWorkerProcess
from .plan import Plan
from .postgres_server import PostgresServer
from .record import rates
from .services import FlightdeckProcess, IngestWorkerProcess

__all__ = ["run_ingest_bench"]

log = logging.getLogger("benchmarks.ingest")

_SEED = 17  # one stream for every contender and every run
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


class _Stores:
    """flightdeck's store and the ceiling's side table, fed the same stream in lockstep."""

    def __init__(self, backend: str, client: flight.FlightClient, side) -> None:
        self.backend = backend
        self.client = client
        self.side = side
        self.flightdeck = stream.EventStream(_SEED)
        self.raw = stream.EventStream(_SEED)
        self.markers = 0

    def put(self, chunk: stream.Chunk) -> float:
        """One DoPut of the chunk; its seconds. All the chunk's first sends must be new."""
        table = chunk.events
        with Timer() as t:
            writer, reader = self.client.do_put(_EVENTS, table.schema)
            writer.write_table(table, max_chunksize=65_536)
            writer.done_writing()
            reply = json.loads(reader.read().to_pybytes())
        writer.close()
        expected = chunk.first_sends().num_rows
        if reply.get("accepted") != expected:
            raise RuntimeError(f"DoPut accepted {reply}, expected {expected} new events")
        return t.seconds

    def ingest_raw(self, table: pa.Table) -> float:
        """adbc_ingest into the side table; its seconds."""
        # DuckDB 2.0's ADBC ingest takes at most one 2,048-row vector per batch (the
        # product's staging works around it the same way).
        chunk = 2048 if self.backend == "duckdb" else 65_536
        now = pa.scalar(dt.datetime.now(dt.UTC), pa.timestamp("us", "UTC"))
        table = table.append_column("ingested_at", pc.if_else(True, now, table["recorded_at"]))
        with Timer() as t, self.side.cursor() as cursor:
            cursor.adbc_ingest("bench_raw_event", table.to_reader(chunk), mode="append")
            self.side.commit()
        return t.seconds

    def mirror(self, n: int, marker: pa.Table | None = None) -> None:
        """Off the clock: the side table takes what flightdeck took by another path."""
        self.ingest_raw(self.raw.take(n).first_sends())
        if marker is not None:
            self.ingest_raw(marker)

    def fill_to(self, stored: int, put_rows: int) -> dict:
        """Both stores up to `stored` events of the stream, flightdeck by DoPut."""
        doput_s = raw_s = 0.0
        while self.flightdeck.taken < stored:
            n = min(put_rows, stored - self.flightdeck.taken)
            doput_s += self.put(self.flightdeck.take(n))
            raw_s += self.ingest_raw(self.raw.take(n).first_sends())
        return {"doput_s": doput_s, "raw_adbc_ingest_s": raw_s}

    def check(self) -> dict:
        """Same events in both? Count and row-hash sum, off the clock."""
        ours = flight_checksum(self.client, self.backend)
        raw = side_checksum(self.side, self.backend, "bench_raw_event")
        same = ours == raw
        if not same:
            log.warning("content differs: flightdeck %s, raw adbc_ingest %s", ours, raw)
        return {"flightdeck": ours, "raw_adbc_ingest": raw, "same": same}


def _backend(plan: Plan, backend: str, pg: PostgresServer, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    if backend == "duckdb":
        db = str(workdir / "ingest.duckdb")
        side_db = str(workdir / "side.duckdb")  # the server owns its file: others use a twin
    else:
        db = side_db = pg.create_database("bench_ingest")
    data.migrate(db, workdir)
    results: dict = {"growth": {}, "doput_vs_size": {}}
    with (
        NatsProcess(workdir / "nats") as nats,
        # The ingest engine alone, as issue 18 measured it: what the built-in rollups
        # add is measured side by side by benchmarks/rollup_costs.py.
        FlightdeckProcess(db, nats.url, workdir / "server", "--no-builtin-rollups") as server,
        _side_connection(backend, side_db) as side,
    ):
        _create_side_tables(backend, side)
        client = flight.connect(server.location)
        watch = CommitWatch(server.location)
        stores = _Stores(backend, client, side)
        for level in plan.ingest_stored:
            results["growth"][str(level)] = _growth_step(plan, stores, watch, nats.url, level)
        results["nats"] = results["growth"][str(plan.ingest_stored[0])]["nats"]
        if backend == "postgresql":
            results["nats_workers"] = _nats_workers(plan, stores, watch, nats.url, db)
        results["doput_vs_size"] = _sizes(plan, stores, side_db)
        results["content"] = stores.check()
        watch.close()
        client.close()
    results["nats_no_store"] = _nats_ceiling(plan, workdir / "nats-no-store")
    return results


def _growth_step(plan: Plan, stores: _Stores, watch: CommitWatch, nats_url: str, level: int):
    fill = stores.fill_to(level, plan.preload_put_rows)
    stored = flight_rows(stores.client)
    size = plan.growth_put_rows
    log.info("ingest %s: %d events stored, DoPut %d rows", stores.backend, stored, size)
    contenders = {
        "doput": lambda r: stores.put(stores.flightdeck.take(size)),
        "raw_adbc_ingest": lambda r: stores.ingest_raw(stores.raw.take(size).first_sends()),
    }
    times = interleave(contenders, plan.runs, log=lambda *a: log.info(*a))
    return {
        "level": level,
        "stored_before": stored,
        "fill": fill,
        "rows": size,
        "times_s": times,
        "rates": {name: rates(t, size) for name, t in times.items()},
        "nats": _nats_path(plan, stores, watch, nats_url),
        "content": stores.check(),
    }


def _sizes(plan: Plan, stores: _Stores, side_db: str) -> dict:
    """DoPut against raw at each put size, into the store as the growth steps left it."""
    out = {}
    seed_events = stream.EventStream(_SEED + 1)
    for size in plan.ingest_sizes:
        largest = size == plan.ingest_sizes[-1]
        stored = flight_rows(stores.client)
        contenders = {
            "doput": lambda r, n=size: stores.put(stores.flightdeck.take(n)),
            "raw_adbc_ingest": lambda r, n=size: stores.ingest_raw(
                stores.raw.take(n).first_sends()
            ),
        }
        if largest:
            contenders["seed_worker"] = _seed_contender(
                stores.backend, stores.side, side_db, plan.seed_sample, seed_events
            )
        log.info(
            "ingest %s %d rows: %d rounds of %s",
            stores.backend,
            size,
            plan.runs,
            ", ".join(contenders),
        )
        times = interleave(contenders, plan.runs, log=lambda *a: log.info(*a))
        entry = {
            "rows": size,
            "stored_before": stored,
            "times_s": times,
            "rates": {
                name: rates(t, plan.seed_sample if name == "seed_worker" else size)
                for name, t in times.items()
            },
        }
        if largest:
            entry["seed_sample"] = plan.seed_sample
        out[str(size)] = entry
    return out


# -- the side connection: ONE engine instance on the side file (ADBC) ----------------------


@contextlib.contextmanager
def _side_connection(backend: str, db: str):
    if backend == "duckdb":
        import adbc_driver_duckdb.dbapi as duck

        conn = duck.connect(db)
        with conn.cursor() as cursor:  # the engine tuned as flightdeck's store is
            cursor.execute(f"SET checkpoint_threshold = '{DUCKDB_CHECKPOINT_THRESHOLD}'")
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


def _seed_contender(backend: str, side, db: str, sample: int, events: stream.EventStream):
    """A worker as a seed script writes it: per event, INSERT it, recount its page's day
    (views and distinct sessions only: fewer metrics than flightdeck keeps), commit.
    On DuckDB it shares the side file's one ADBC connection: one engine on the file."""
    if backend == "postgresql":
        import psycopg

        conn, mark = psycopg.connect(db), "%s"
    else:
        conn, mark = side, "?"
    insert = _SEED_INSERT.format(v=", ".join([mark] * 9))
    upsert = _SEED_UPSERT.format(p=mark, d=mark, start=mark, end=mark)

    def run(r: int) -> float:
        rows = events.take(sample).events.to_pylist()
        with Timer() as t:
            for row in rows:
                day = row["recorded_at"].date()
                start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
                with conn.cursor() as cursor:
                    cursor.execute(insert, [row[c] for c in data.EVENT_COLUMNS])
                    page = row["page_url"]
                    cursor.execute(upsert, (page, day, page, start, start + dt.timedelta(days=1)))
                conn.commit()
        return t.seconds

    return run


# -- the NATS path --------------------------------------------------------------------------


def _marker(tag: str, after: pa.Table) -> pa.Table:
    """One event on a page of its own, published last: its arrival ends the round."""
    when = pc.max(after["recorded_at"])
    row = {c: [None] for c in data.EVENT_COLUMNS}
    row |= {"event_id": [f"bench-end-{tag}"], "session_id": [f"bench-end-{tag}"]}
    row |= {"page_url": [MARKER_PREFIX + tag], "recorded_at": [when.as_py()]}
    return pa.Table.from_pydict(row, schema=after.select(data.EVENT_COLUMNS).schema)


def _nats_path(
    plan: Plan, stores: _Stores, watch: CommitWatch, nats_url: str, drain: bool = False
) -> dict:
    """Publish the stream's next events as fast as a producer can; time until the last
    is committed (pushed to a live subscriber); then check every new event was stored.

    With `drain` (several workers: the last event may commit before earlier ones), the
    round ends once, after that, the consumer has nothing pending or unacked."""
    n = plan.nats_events
    seconds, publish_seconds = [], []
    for r in range(plan.runs):
        stores.markers += 1
        tag = f"{stores.markers}"
        chunk = stores.flightdeck.take(n)
        marker = _marker(tag, chunk.events)
        messages = stream.json_messages(chunk.events) + stream.json_messages(marker)
        before = flight_rows(stores.client)
        started = time.perf_counter()
        published = asyncio.run(_publish(nats_url, messages)) - started
        arrived = watch.wait(MARKER_PREFIX + tag, timeout=max(120.0, n / 2000))
        if drain:
            arrived = asyncio.run(_drained(nats_url, timeout=120.0))
        elapsed = arrived - started
        stores.mirror(n, marker)
        stored = flight_rows(stores.client) - before
        expected = chunk.first_sends().num_rows + 1
        if stored != expected:
            raise RuntimeError(f"NATS round: {stored} new events stored, expected {expected}")
        seconds.append(elapsed)
        publish_seconds.append(published)
        log.info(
            "    nats round %d: %d events committed in %.2fs (published in %.2fs) = %.0f/s",
            r + 1,
            n,
            elapsed,
            published,
            n / elapsed,
        )
    return {
        "events": n,
        "completion": "push: the last event's aggregate row reaching a live subscriber",
        "times_s": seconds,
        "publish_times_s": publish_seconds,
        "rates": rates(seconds, n),
        "publish_rate": summary([n / s for s in publish_seconds]),
    }


# Workers consuming the stream together: the server's own plus `flightdeck ingest`s.
WORKER_COUNTS = (1, 2, 4)


def _nats_workers(plan: Plan, stores: _Stores, watch: CommitWatch, nats_url: str, db: str) -> dict:
    """The NATS path with 1, 2 and 4 workers on one PostgreSQL store (a DuckDB file has
    one owner, so one worker). Workers decode and append side by side and take turns
    only to fold into the aggregates (ingest/turns.py)."""
    out = {}
    for count in WORKER_COUNTS:
        with contextlib.ExitStack() as extra:
            for _ in range(count - 1):
                extra.enter_context(IngestWorkerProcess(db, nats_url))
            log.info("ingest %s: NATS with %d worker(s)", stores.backend, count)
            out[str(count)] = _nats_path(plan, stores, watch, nats_url, drain=True)
    return out


async def _drained(url: str, timeout: float) -> float:
    """When the ingest consumer has nothing pending or unacked: a worker acks a message
    only after its commit. Polled every 20 ms (at most that much late)."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            info = await js.consumer_info("EVENTS", DURABLE)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return time.perf_counter()
            await asyncio.sleep(0.02)
        raise RuntimeError(f"the ingest consumer did not drain within {timeout:.0f}s")
    finally:
        await nc.close()


def _nats_ceiling(plan: Plan, root: Path) -> dict:
    """The worker's own ceiling: flightdeck's IngestWorker with a commit that stores
    nothing, on a nats-server of its own; the same stream, the same publisher."""
    n = plan.nats_events
    events = stream.EventStream(_SEED)
    seconds, total = [], 0
    with NatsProcess(root) as nats, NoStoreWorkerProcess(nats.url) as worker:
        for r in range(plan.runs):
            messages = stream.json_messages(events.take(n).events)
            total += n
            started = time.perf_counter()
            asyncio.run(_publish(nats.url, messages))
            seconds.append(worker.wait_for(total, timeout=max(120.0, n / 2000)) - started)
            log.info("    nats, no store, round %d: %.0f events/s", r + 1, n / seconds[-1])
    return {"events": n, "times_s": seconds, "rates": rates(seconds, n)}


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
