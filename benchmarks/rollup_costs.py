"""What declared rollups cost a put (issue 19): `python -m benchmarks.rollup_costs BACKEND
[PUTS] [ROWS] [ROLLUP ...]`.

One store per variant, each fed the same realistic stream (benchmarks/stream.py)
put by put, interleaved so the machine's noise falls on all alike: no rollups,
every built-in, and each named built-in alone (default: all of them one by one).
Prints each put's seconds per variant and, at the end, each variant's median
rate and its ratio to the store without rollups.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flightdeck.ingest import ingest
from flightdeck.ingest.rollup_install import install
from flightdeck.views import StoreOptions, migrations, open_store
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

from . import stream
from .postgres_server import DURABLE, PostgresServer


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
        for i, (name, rollups) in enumerate(variants.items()):
            db = str(root / f"v{i}.duckdb") if pg is None else pg.create_database(f"rollups_{i}")
            store = open_store(StoreOptions(db=db, data_dir=root, statement_timeout_s=600))
            stack.callback(store.close)
            migrations.apply(store, migrations.load_migrations(store.backend))
            install(store, rollups)
            stores[name], streams[name] = store, stream.EventStream(17)
        for put in range(puts):
            line = []
            for name, store in stores.items():
                table = streams[name].take(rows).events
                start = time.perf_counter()
                ingest(store, table.to_batches(max_chunksize=10_000))
                seconds[name].append(time.perf_counter() - start)
                line.append(f"{name} {seconds[name][-1]:.2f}s")
            print(f"{backend} put {put}: " + ", ".join(line), flush=True)
    base = statistics.median(seconds["none"])
    for name, times in seconds.items():
        median = statistics.median(times)
        print(
            f"{backend} {name:>20}: {rows / median:>9,.0f} rows/s, "
            f"{median / base:.2f}x the time without rollups (+{median - base:.2f} s a put)"
        )


if __name__ == "__main__":
    main()
