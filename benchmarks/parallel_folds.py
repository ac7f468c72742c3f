"""Do two writers' folds run side by side? PostgreSQL, one store, one and two writers.

    .venv/bin/python -m benchmarks.parallel_folds [--puts 8] [--rows 5000] [--rounds 2]

The same puts are ingested by one writer (one after another) and by two at once,
each time into a fresh database with the built-in rollups installed, in two
workloads:
- `own sessions`: each writer's puts come from a stream of its own (its own
  sessions), as two loaders, two sites or a backfill beside live traffic send;
- `one stream`: puts are cut in turn from one realistic stream and dealt to the
  writers, as two NATS workers pulling one consumer get them, so puts share the
  sessions that are live at the time.
Prints events/s per run and the two-writer to one-writer ratio per workload;
rounds alternate the order, so the machine's drift falls on both alike. The
ratio is what the session locks (ingest/session_locks.py) buy; 1.0 means the
writers took turns.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
from flightdeck.ingest import ingest
from flightdeck.ingest.rollup_install import install
from flightdeck.views import StoreOptions, migrations, open_store
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

from .postgres_server import DURABLE, PostgresServer
from .stream import EventStream

WORKLOADS = ("own sessions", "one stream")


def _puts(workload: str, writers: int, puts: int, rows: int) -> list[list[pa.Table]]:
    """Each writer's puts: `puts` in all, the same events whatever `writers` is."""
    if workload == "own sessions":
        streams = [EventStream(seed=100 + w) for w in range(2)]
        tables = [streams[i % 2].take(rows).events for i in range(puts)]
    else:
        stream = EventStream(seed=17)
        tables = [stream.take(rows).events for _ in range(puts)]
    return [tables[w::writers] for w in range(writers)]


def _run(pg: PostgresServer, data_dir: Path, name: str, lists: list[list[pa.Table]]) -> dict:
    store = open_store(StoreOptions(db=pg.create_database(name), data_dir=data_dir))
    try:
        migrations.apply(store, migrations.load_migrations(store.backend))
        install(store, load_rollups([BUILTIN_DIR]))
        accepted = [0] * len(lists)
        errors: list[BaseException] = []

        def write(w: int) -> None:
            try:
                for table in lists[w]:
                    accepted[w] += ingest(store, table.to_batches(max_chunksize=10_000)).accepted
            except BaseException as exc:  # reported below, from the main thread
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(len(lists))]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - began
        if errors:
            raise errors[0]
        return {"events": sum(accepted), "seconds": seconds, "per_s": sum(accepted) / seconds}
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--puts", type=int, default=8)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workload", choices=WORKLOADS, action="append")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    workloads = args.workload or list(WORKLOADS)
    runs: dict[str, dict[int, list[dict]]] = {w: {1: [], 2: []} for w in workloads}
    with tempfile.TemporaryDirectory() as tmp, PostgresServer(DURABLE) as pg:
        for round_ in range(args.rounds):
            for workload in workloads:
                order = (1, 2) if round_ % 2 == 0 else (2, 1)
                for writers in order:
                    lists = _puts(workload, writers, args.puts, args.rows)
                    name = f"pf_{round_}_{workload.split()[0]}_{writers}"
                    run = _run(pg, Path(tmp), name, lists)
                    runs[workload][writers].append(run)
                    print(
                        f"{workload:12} writers={writers} {run['events']:>7,} events "
                        f"{run['seconds']:6.2f} s {run['per_s']:>8,.0f} events/s",
                        flush=True,
                    )
    summary = {}
    for workload in workloads:
        one = statistics.median(r["per_s"] for r in runs[workload][1])
        two = statistics.median(r["per_s"] for r in runs[workload][2])
        summary[workload] = {"one_writer_per_s": one, "two_writers_per_s": two, "ratio": two / one}
        print(
            f"{workload:12} two writers / one: {two / one:.2f} ({two:,.0f} / {one:,.0f} events/s)"
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "parallel-folds.json").write_text(
            json.dumps(
                {"args": vars(args) | {"out": str(args.out)}, "runs": runs, "summary": summary},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
