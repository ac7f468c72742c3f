"""Comparison 1: read `va_pageview_event` of N rows as Arrow, six ways, on both backends.

Contenders, interleaved round by round after one untimed warm-up round for all
(every contender at every size is measured warm):
- `doget`: flightdeck GetFlightInfo + DoGet on the path descriptor, to a pyarrow Table;
- `flightsql`: the same server through adbc_driver_flightsql (`SELECT * FROM va_…`);
- `doget_pandas`: `doget` then `Table.to_pandas()`, what a notebook user ends up with;
- `direct_adbc`: the same view read through ADBC straight from the store, in the client
  (DuckDB: an identical copy of the file, as the server holds its own; PostgreSQL:
  the same database) — the server's overhead is the gap to this;
- `psycopg_pandas` (PostgreSQL): psycopg `fetchall()` into a `pandas.DataFrame`;
- `memory_flight`: a bare pyarrow.flight server holding the same rows in memory, in
  its own process — the transport ceiling. One canonical table per size, served by
  one process for both backends' comparisons, in DoGet's messages (ceiling.py).

Every contender reads in a child process of its own, kept for all its rounds of one
comparison (reader.py): a read's speed depends on what the reading process's memory
held before, and one shared process made each contender pay for the one before it.

Sizes are the outer loop and backends the inner one, so that one memory server
per size serves both. Each contender's result is checksummed (checksum.py) in
the warm-up round, off the clock; each Arrow read also records its time to the
first batch (from the first call: GetFlightInfo, or execute for ADBC).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.flight_server.nats_process import NatsProcess

from . import data
from .backend_memory import BackendSampler, server_backends
from .ceiling import MESSAGE_RULE, CeilingFiles
from .measure import interleave
from .plan import Plan
from .postgres_server import PostgresServer
from .reader import Reader, ReadOutcome, ReadSpec
from .record import rates
from .services import (
    FlightdeckProcess,
    MemoryFlightProcess,
    RssSampler,
    peak_rss_mb,
    reset_peak_rss,
    rss_file_mb,
    rss_mb,
)

__all__ = ["run_query_bench"]

log = logging.getLogger("benchmarks.query")
VIEW = "va_pageview_event"
SQL = f"SELECT * FROM {VIEW}"


@dataclass
class _Store:
    backend: str
    db: str
    workdir: Path
    loaded: int = 0
    direct_path: Path | None = None


def run_query_bench(plan: Plan, pg: PostgresServer, workdir: Path) -> dict:
    out: dict = {backend: {} for backend in plan.backends}
    ceilings = CeilingFiles(workdir / "ceiling")
    stores = {b: _open_store(b, pg, workdir / f"query-{b}") for b in plan.backends}
    with contextlib.ExitStack() as stack:
        nats = {b: stack.enter_context(NatsProcess(s.workdir / "nats")) for b, s in stores.items()}
        for size in plan.query_sizes:
            with contextlib.ExitStack() as per_size:
                memory: MemoryFlightProcess | None = None
                for backend, store in stores.items():
                    _load_to(store, size)
                    with FlightdeckProcess(
                        store.db, nats[backend].url, store.workdir / "server"
                    ) as server:
                        schema = _served_schema(server)
                        if memory is None:  # started while nothing else reads
                            path = ceilings.path(size, schema)
                            memory = per_size.enter_context(MemoryFlightProcess(path))
                        entry = _compare(plan, store, size, server, memory)
                    entry["ceiling"] = {
                        "message_rule": MESSAGE_RULE,
                        "arrow_bytes": ceilings.nbytes.get(size),
                        "same_schema_as_doget": schema == ceilings.schema(size),
                    }
                    out[backend][str(size)] = entry
        if "duckdb" in stores:
            size = max(plan.query_sizes)
            out["duckdb"][str(size)]["capped_pool"] = _capped_read(
                stores["duckdb"].db, nats["duckdb"].url, stores["duckdb"].workdir, size
            )
    return out


def _open_store(backend: str, pg: PostgresServer, workdir: Path) -> _Store:
    workdir.mkdir(parents=True, exist_ok=True)
    db = str(workdir / "query.duckdb") if backend == "duckdb" else pg.create_database("bench_query")
    data.migrate(db, workdir)
    return _Store(backend, db, workdir)


def _load_to(store: _Store, size: int) -> None:
    log.info("query %s: loading %d rows", store.backend, size - store.loaded)
    more = data.events(size - store.loaded, start=store.loaded)
    if store.backend == "duckdb":
        data.load_duckdb(Path(store.db), more)
        store.direct_path = data.copy_duckdb(Path(store.db), store.workdir / "direct.duckdb")
    else:
        data.load_postgres(store.db, more)
    store.loaded = size


def _served_schema(server: FlightdeckProcess) -> pa.Schema:
    client = flight.connect(server.location)
    try:
        return client.get_flight_info(flight.FlightDescriptor.for_path(VIEW)).schema
    finally:
        client.close()


# Enough for the read; an operator's cap shows how much of the RSS is DuckDB's pool.
CAPPED_POOL = "64MB"


def _capped_read(db: str, nats_url: str, workdir: Path, size: int) -> dict:
    """One DoGet from a server started with --duckdb-memory-limit: RSS and time."""
    extra = ("--duckdb-memory-limit", CAPPED_POOL)
    with (
        FlightdeckProcess(db, nats_url, workdir / "server-capped", *extra) as server,
        Reader(ReadSpec("doget", server.location)) as reader,
    ):
        before = rss_mb(server.pid)
        reset = reset_peak_rss(server.pid)
        with RssSampler(server.pid) as sampler:
            got = reader.read(0)
        _check("doget", got.rows, size)
        high_water = peak_rss_mb(server.pid) if reset else None
        peak = max(high_water or 0.0, sampler.peak or 0.0)
    log.info("query duckdb capped pool %s: rss before %.0f, peak %.0f", CAPPED_POOL, before, peak)
    return {"limit": CAPPED_POOL, "rss_before_mb": before, "peak_mb": peak, "seconds": got.seconds}


class _Record:
    """What the rounds leave besides seconds: first batches, peaks, checksums."""

    def __init__(self) -> None:
        self.first_batch_s: dict[str, list[float]] = {}
        self.server_peak_mb: dict[str, list[float]] = {}
        self.backend_peak_mb: dict[str, list[dict]] = {}
        self.checksums: dict[str, dict[str, int]] = {}
        self.arrow_bytes: int | None = None  # of the DoGet result, for MB/s


def _specs(plan: Plan, store: _Store, size: int, server, memory) -> dict[str, ReadSpec]:
    """Each contender's reader; the server's own are listed first (see SERVED)."""
    direct = (
        ReadSpec("adbc_duckdb", str(store.direct_path))
        if store.backend == "duckdb"
        else ReadSpec("adbc_postgresql", store.db)
    )
    specs = {
        "doget": ReadSpec("doget", server.location),
        "flightsql": ReadSpec("flightsql", server.location),
        "doget_pandas": ReadSpec("doget_pandas", server.location),
        "direct_adbc": direct,
    }
    if size > plan.pandas_max_rows:
        del specs["doget_pandas"]
    elif store.backend == "postgresql":
        specs["psycopg_pandas"] = ReadSpec("psycopg_pandas", store.db)
    specs["memory_flight"] = ReadSpec("doget", memory.location)
    return specs


# Contenders read through the flightdeck server: its RSS (and its backends') is theirs.
SERVED = ("doget", "flightsql", "doget_pandas")


def _compare(
    plan: Plan, store: _Store, size: int, server: FlightdeckProcess, memory: MemoryFlightProcess
) -> dict:
    backend = store.backend
    record = _Record()
    with contextlib.ExitStack() as stack:
        readers = {
            name: stack.enter_context(Reader(spec))
            for name, spec in _specs(plan, store, size, server, memory).items()
        }
        monitor = None
        client_pids = {r.backend_pid for r in readers.values() if r.backend_pid is not None}
        if backend == "postgresql":
            monitor = stack.enter_context(_monitor(store.db))

        def on_server(name: str):
            def run(r: int) -> float:
                pids = server_backends(monitor, client_pids) if monitor is not None else []
                reset = reset_peak_rss(server.pid)
                with BackendSampler(pids) as backends, RssSampler(server.pid) as sampler:
                    got = readers[name].read(r)
                high_water = peak_rss_mb(server.pid) if reset else None
                if r >= 0:
                    peak = max(high_water or 0.0, sampler.peak or 0.0)
                    record.server_peak_mb.setdefault(name, []).append(peak)
                    if pids:
                        sums = {"backends": len(pids), **backends.peak}
                        record.backend_peak_mb.setdefault(name, []).append(sums)
                _account(record, name, r, got, size)
                return got.seconds

            return run

        def local(name: str):
            def run(r: int) -> float:
                got = readers[name].read(r)
                _account(record, name, r, got, size)
                return got.seconds

            return run

        contenders = {n: on_server(n) if n in SERVED else local(n) for n in readers}
        runs = plan.query_runs(size)
        log.info("query %s %d rows: %d rounds of %s", backend, size, runs, ", ".join(contenders))
        baseline_rss = rss_mb(server.pid)
        times = interleave(
            contenders, runs, warmup=plan.query_warmup(size), log=lambda *a: log.info(*a)
        )
    return {
        "rows": size,
        "warm": plan.query_warmup(size),
        "reader": "one child process per contender (benchmarks/reader.py)",
        "arrow_bytes": record.arrow_bytes,
        "times_s": times,
        "rates": {name: rates(t, size, record.arrow_bytes) for name, t in times.items()},
        "first_batch_s": record.first_batch_s,
        "server_rss_before_mb": baseline_rss,
        "server_rss_file_mb": rss_file_mb(server.pid),
        "server_peak_rss_mb": record.server_peak_mb,
        "pg_backend_peak_mb": record.backend_peak_mb,
        "checksums": record.checksums,
        "content_same": _content_same(record.checksums),
    }


def _account(record: _Record, name: str, r: int, got: ReadOutcome, size: int) -> None:
    """Off the clock: the row count always, the content once (in the warm-up round)."""
    _check(name, got.rows, size)
    if r < 0:
        record.checksums[name] = got.checksum
        if name == "doget":
            record.arrow_bytes = got.arrow_bytes
    elif got.first_batch_s is not None:
        record.first_batch_s.setdefault(name, []).append(got.first_batch_s)


def _content_same(checksums: dict[str, dict[str, int]]) -> dict[str, bool]:
    """Each contender's checksum against DoGet's (the ceiling's rows come from the
    generator, the others' from the store: all must hold the same values)."""
    reference = checksums.get("doget")
    return {name: sums == reference for name, sums in checksums.items() if name != "doget"}


def _check(name: str, rows: int, size: int) -> None:
    if rows != size:
        raise RuntimeError(f"{name} read {rows} rows, expected {size}")


@contextlib.contextmanager
def _monitor(url: str):
    """A connection that lists the server's backends (it reads nothing timed)."""
    import adbc_driver_postgresql.dbapi as pg

    conn = pg.connect(url, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()
