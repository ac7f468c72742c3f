"""What declared rollups cost a put (issue 19): `python -m benchmarks.rollup_costs BACKEND
[PUTS] [ROWS] [ROLLUP ...]`.

One store per variant, each fed the same realistic stream (benchmarks/stream.py)
put by put, interleaved so the machine's noise falls on all alike: no rollups,
every built-in, and each named built-in alone (default: all of them one by one);
and the raw ceiling: `adbc_ingest` of the put's new events into a table with the
same key (the ingest benchmark's contender). Puts go through the pipeline in
this process (`ingest()`), without Flight. Prints each put's seconds per variant
and, at the end, each variant's median rate, its ratio to the store without
rollups and to the raw ceiling.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from flightdeck.ingest import ingest
from flightdeck.ingest.rollup_install import install
from flightdeck.views import StoreOptions, migrations, open_store
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

from . import stream
from .ingest_bench import _create_side_tables, _side_connection
from .postgres_server import DURABLE, PostgresServer

_RAW = "raw adbc_ingest"


def _variants(names: list[str]) -> dict[str, list]:
    builtins = {r.name: r for r in load_rollups([BUILTIN_DIR])}
    variants = {"none": [], "all built-ins": list(builtins.values())}
    for name in names or list(builtins):
        variants[name] = [builtins[name]]
    return variants


def main() -> None:
    backend = sys.argv[1]
    puts = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    variants = _variants(sys.argv[4:])
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        pg = stack.enter_context(PostgresServer(DURABLE)) if backend == "postgresql" else None
        stores, streams = {}, {}
        first_db = None
        for i, (name, rollups) in enumerate(variants.items()):
            db = str(root / f"v{i}.duckdb") if pg is None else pg.create_database(f"rollups_{i}")
            store = open_store(StoreOptions(db=db, data_dir=root, statement_timeout_s=600))
            stack.callback(store.close)
            migrations.apply(store, migrations.load_migrations(store.backend))
            install(store, rollups)
            stores[name], streams[name] = store, stream.EventStream(17)
            first_db = first_db or db
        # PostgreSQL: the raw table is made LIKE tb_pageview_event, in the first store's
        # database (as the ingest benchmark does); DuckDB: a file of its own.
        side_db = str(root / "raw.duckdb") if pg is None else first_db
        side = stack.enter_context(_side_connection(backend, side_db))
        _create_side_tables(backend, side)
        raw_stream = stream.EventStream(17)
        seconds[_RAW] = []
        for put in range(puts):
            line = []
            for name, store in stores.items():
                table = streams[name].take(rows).events
                start = time.perf_counter()
                ingest(store, table.to_batches(max_chunksize=10_000))
                seconds[name].append(time.perf_counter() - start)
                line.append(f"{name} {seconds[name][-1]:.2f}s")
            seconds[_RAW].append(_raw(backend, side, raw_stream.take(rows).first_sends()))
            line.append(f"{_RAW} {seconds[_RAW][-1]:.2f}s")
            print(f"{backend} put {put}: " + ", ".join(line), flush=True)
    base, raw = statistics.median(seconds["none"]), statistics.median(seconds[_RAW])
    for name, times in seconds.items():
        median = statistics.median(times)
        print(
            f"{backend} {name:>20}: {rows / median:>9,.0f} rows/s, "
            f"{median / base:.2f}x the time without rollups (+{median - base:.2f} s a put), "
            f"{raw / median:.2f}x the raw ceiling's rate"
        )


def _raw(backend: str, side, table) -> float:
    """The raw contender: the put's new events appended by adbc_ingest; its seconds."""
    chunk = 2048 if backend == "duckdb" else 65_536  # DuckDB's ADBC ingest: one vector a batch
    now = pa.scalar(dt.datetime.now(dt.UTC), pa.timestamp("us", "UTC"))
    table = table.append_column("ingested_at", pc.if_else(True, now, table["recorded_at"]))
    start = time.perf_counter()
    with side.cursor() as cursor:
        cursor.adbc_ingest("bench_raw_event", table.to_reader(chunk), mode="append")
        side.commit()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
