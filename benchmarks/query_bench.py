"""Comparison 1: read `va_pageview_event` of N rows as Arrow, six ways, on both backends.

Contenders, interleaved round by round:
- `doget`: flightdeck GetFlightInfo + DoGet on the path descriptor, to a pyarrow Table;
- `flightsql`: the same server through adbc_driver_flightsql (`SELECT * FROM va_…`);
- `doget_pandas`: `doget` then `Table.to_pandas()`, what a notebook user ends up with;
- `direct_adbc`: the same view read through ADBC straight from the store, in the client
  (DuckDB: an identical copy of the file, as the server holds its own; PostgreSQL:
  the same database) — the server's overhead is the gap to this;
- `psycopg_pandas` (PostgreSQL): psycopg `fetchall()` into a `pandas.DataFrame`;
- `memory_flight`: a bare pyarrow.flight server holding the same table in memory,
  in its own process — the transport ceiling.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.flight_server.nats_process import NatsProcess

from . import data
from .measure import Timer, interleave
from .plan import Plan
from .postgres_server import PostgresServer
from .record import rates
from .services import (
    FlightdeckProcess,
    MemoryFlightProcess,
    RssSampler,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
)

__all__ = ["run_query_bench"]

log = logging.getLogger("benchmarks.query")
VIEW = "va_pageview_event"
SQL = f"SELECT * FROM {VIEW}"


def run_query_bench(plan: Plan, pg: PostgresServer, workdir: Path) -> dict:
    out: dict = {}
    for backend in plan.backends:
        out[backend] = _backend(plan, backend, pg, workdir / f"query-{backend}")
    return out


def _backend(plan: Plan, backend: str, pg: PostgresServer, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    db = str(workdir / "query.duckdb") if backend == "duckdb" else pg.create_database("bench_query")
    data.migrate(db, workdir)
    results: dict = {}
    loaded = 0
    with NatsProcess(workdir / "nats") as nats:
        for size in plan.query_sizes:
            log.info("query %s: loading %d rows", backend, size - loaded)
            more = data.events(size - loaded, start=loaded)
            if backend == "duckdb":
                data.load_duckdb(Path(db), more)
                direct_path = data.copy_duckdb(Path(db), workdir / "direct.duckdb")
            else:
                data.load_postgres(db, more)
                direct_path = None
            del more
            loaded = size
            with FlightdeckProcess(db, nats.url, workdir / "server") as server:
                results[str(size)] = _compare(plan, backend, size, db, direct_path, server, workdir)
            if backend == "duckdb" and size == max(plan.query_sizes):
                results[str(size)]["capped_pool"] = _capped_read(db, nats.url, workdir, size)
    return results


# Enough for the read; an operator's cap shows how much of the RSS is DuckDB's pool.
CAPPED_POOL = "64MB"


def _capped_read(db: str, nats_url: str, workdir: Path, size: int) -> dict:
    """One DoGet from a server started with --duckdb-memory-limit: RSS and time."""
    extra = ("--duckdb-memory-limit", CAPPED_POOL)
    with FlightdeckProcess(db, nats_url, workdir / "server-capped", *extra) as server:
        client = flight.connect(server.location)
        before = rss_mb(server.pid)
        seconds, peak = _measured_on(server.pid, lambda: _doget(client).num_rows, "doget", size)
        client.close()
    log.info("query duckdb capped pool %s: rss before %.0f, peak %.0f", CAPPED_POOL, before, peak)
    return {"limit": CAPPED_POOL, "rss_before_mb": before, "peak_mb": peak, "seconds": seconds}


def _measured_on(pid: int, read: Callable[[], int], name: str, size: int) -> tuple[float, float]:
    """Run `read` (it returns the rows read) against server `pid`: the seconds it took and
    the server's peak RSS in MB (VmHWM after a reset, or the 10 ms sampler's peak)."""
    reset = reset_peak_rss(pid)
    with RssSampler(pid) as sampler, Timer() as t:
        rows = read()
    _check(name, rows, size)
    high_water = peak_rss_mb(pid) if reset else None
    return t.seconds, max(high_water or 0.0, sampler.peak or 0.0)


def _compare(
    plan: Plan,
    backend: str,
    size: int,
    db: str,
    direct_path: Path | None,
    server: FlightdeckProcess,
    workdir: Path,
) -> dict:
    client = flight.connect(server.location)
    served = _doget(client)  # also the table the ceiling serves: the same rows, same types
    assert served.num_rows == size, (served.num_rows, size)
    arrow_bytes = served.nbytes
    arrow_file = workdir / "served.arrow"
    with pa.OSFile(str(arrow_file), "wb") as sink, pa.ipc.new_file(sink, served.schema) as w:
        w.write_table(served, max_chunksize=65_536)
    del served

    peaks: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        memory = stack.enter_context(MemoryFlightProcess(arrow_file, 65_536))
        memory_client = flight.connect(memory.location)
        sql_conn = stack.enter_context(_flightsql(server.location))
        direct_conn = stack.enter_context(_direct(backend, db, direct_path))

        def on_server(name, read):
            def run(r: int) -> float:
                seconds, peak = _measured_on(server.pid, read, name, size)
                if r >= 0:
                    peaks.setdefault(name, []).append(peak)
                return seconds

            return run

        def local(name, read):
            def run(r: int) -> float:
                with Timer() as t:
                    rows = read()
                _check(name, rows, size)
                return t.seconds

            return run

        contenders = {
            "doget": on_server("doget", lambda: _doget(client).num_rows),
            "flightsql": on_server("flightsql", lambda: _sql_read(sql_conn).num_rows),
            "doget_pandas": on_server("doget_pandas", lambda: len(_doget(client).to_pandas())),
            "direct_adbc": local("direct_adbc", lambda: _sql_read(direct_conn).num_rows),
        }
        if size > plan.pandas_max_rows:
            del contenders["doget_pandas"]
        elif backend == "postgresql":
            psycopg_conn = stack.enter_context(_psycopg(db))
            contenders["psycopg_pandas"] = local(
                "psycopg_pandas", lambda: len(_psycopg_frame(psycopg_conn))
            )
        contenders["memory_flight"] = local("memory_flight", lambda: _doget(memory_client).num_rows)
        runs = plan.query_runs(size)
        log.info("query %s %d rows: %d rounds of %s", backend, size, runs, ", ".join(contenders))
        baseline_rss = rss_mb(server.pid)
        times = interleave(
            contenders, runs, warmup=plan.query_warmup(size), log=lambda *a: log.info(*a)
        )
    client.close()
    memory_client.close()
    arrow_file.unlink()
    return {
        "rows": size,
        "arrow_bytes": arrow_bytes,
        "times_s": times,
        "rates": {name: rates(t, size, arrow_bytes) for name, t in times.items()},
        "server_rss_before_mb": baseline_rss,
        "server_peak_rss_mb": peaks,
    }


def _check(name: str, rows: int, size: int) -> None:
    if rows != size:
        raise RuntimeError(f"{name} read {rows} rows, expected {size}")


def _doget(client: flight.FlightClient) -> pa.Table:
    info = client.get_flight_info(flight.FlightDescriptor.for_path(VIEW))
    return client.do_get(info.endpoints[0].ticket).read_all()


def _sql_read(conn) -> pa.Table:
    with conn.cursor() as cursor:
        cursor.execute(SQL)
        return cursor.fetch_arrow_table()


@contextlib.contextmanager
def _flightsql(location: str):
    import adbc_driver_flightsql.dbapi as flightsql

    conn = flightsql.connect(location)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def _direct(backend: str, db: str, direct_path: Path | None):
    if backend == "duckdb":
        import adbc_driver_duckdb.dbapi as duck

        conn = duck.connect(str(direct_path))
    else:
        import adbc_driver_postgresql.dbapi as pg

        conn = pg.connect(db, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def _psycopg(url: str):
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def _psycopg_frame(conn):
    """What a notebook does today: fetch rows as tuples, build a DataFrame."""
    import pandas as pd

    with conn.cursor() as cursor:
        cursor.execute(SQL)
        rows = cursor.fetchall()
        columns = [d.name for d in cursor.description]
    return pd.DataFrame(rows, columns=columns)
