"""Per-statement timings of aggregates.recompute, old and new side by side.

    .venv/bin/python -m benchmarks.aggregates_profile OLD_AGGREGATES_PY [--stored N] [--events N]

OLD_AGGREGATES_PY is the previous ingest/aggregates.py (e.g. `git show REV:ingest/aggregates.py`
with its relative import made absolute); its store is migrated only up to the migrations it
knew (`--old-upto`). Both stores get the same realistic stream (benchmarks/stream.py): `--stored`
events in puts of 100 k first, then `--events` in 4 puts, old and new interleaved put by put.
Prints the time of every recompute statement summed over the 4 measured puts, and the ratio.
A noisy machine makes absolute times meaningless: compare within one run.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.util
import tempfile
import time
from pathlib import Path

from flightdeck.ingest import pipeline
from flightdeck.views import StoreOptions, migrations, open_store

from benchmarks.stream import EventStream


class _Timed:
    """A cursor that adds each statement's time to `spent`, keyed by its first words."""

    def __init__(self, cursor, spent: dict[str, float]) -> None:
        self._cursor, self._spent = cursor, spent

    def execute(self, sql: str, *args):
        start = time.perf_counter()
        result = self._cursor.execute(sql, *args)
        key = " ".join(sql.split()[:6])[:70]
        self._spent[key] += time.perf_counter() - start
        return result

    def __getattr__(self, name: str):
        return getattr(self._cursor, name)


def _module(path: Path):
    spec = importlib.util.spec_from_file_location("aggregates_old", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _store(db: str, data_dir: Path, upto: str | None):
    store = open_store(StoreOptions(db=db, data_dir=data_dir))
    wanted = [
        m
        for m in migrations.load_migrations(store.backend)
        if upto is None or m.phase != "pre" or m.name <= upto
    ]
    migrations.apply(store, wanted)
    return store


class _Steps:
    """The pipeline's two fold steps (`prepare`, `apply`) over `module`, each statement
    timed; an older module with one `recompute` runs it whole as the second step."""

    def __init__(self, module, backend: str, spent: dict[str, float]) -> None:
        self._module, self._backend, self._spent = module, backend, spent
        self.seconds = 0.0

    def prepare(self, cursor) -> None:
        if hasattr(self._module, "prepare"):
            self._timed(self._module.prepare, _Timed(cursor, self._spent))

    def apply(self, cursor, version: int) -> None:
        timed = _Timed(cursor, self._spent)
        if hasattr(self._module, "apply"):
            self._timed(self._module.apply, timed, version)
        else:
            self._timed(self._module.recompute, timed, version, self._backend)

    def _timed(self, step, *args) -> None:
        start = time.perf_counter()
        step(*args)
        self.seconds += time.perf_counter() - start


def _put(store, module, table, spent: dict[str, float]) -> float:
    real = pipeline.aggregates
    steps = _Steps(module, store.backend, spent)
    pipeline.aggregates = steps
    try:
        start = time.perf_counter()
        pipeline.ingest(store, table.to_batches(max_chunksize=10_000))
        elapsed = time.perf_counter() - start
    finally:
        pipeline.aggregates = real
    spent["(whole recompute)"] += steps.seconds
    return elapsed


def _run(backend_url: str, tmp: Path, old_path: Path, args) -> None:
    from flightdeck.ingest import aggregates as new

    old = _module(old_path)
    urls = {"old": backend_url.format(name="old"), "new": backend_url.format(name="new")}
    stores = {
        "old": _store(urls["old"], tmp / "old", args.old_upto),
        "new": _store(urls["new"], tmp / "new", None),
    }
    modules = {"old": old, "new": new}
    streams = {name: EventStream(seed=5) for name in stores}
    for _ in range(args.stored // 100_000):
        for name in stores:
            table = streams[name].take(100_000).events
            _put(stores[name], modules[name], table, collections.defaultdict(float))
    spent = {name: collections.defaultdict(float) for name in stores}
    put_s = collections.defaultdict(float)
    for _ in range(4):
        for name in stores:
            table = streams[name].take(args.events // 4).events
            put_s[name] += _put(stores[name], modules[name], table, spent[name])
    print(f"== {stores['new'].backend}: {args.stored} stored, {args.events} events in 4 puts")
    for name in stores:
        print(f"-- {name}: whole puts {put_s[name]:.2f} s")
        for key, s in sorted(spent[name].items(), key=lambda kv: -kv[1]):
            print(f"   {s:7.3f}  {key}")
    whole = {n: spent[n]["(whole recompute)"] for n in stores}
    print(
        f"recompute new/old = {whole['new'] / whole['old']:.2f}; "
        f"put new/old = {put_s['new'] / put_s['old']:.2f}"
    )
    for store in stores.values():
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("old", type=Path)
    parser.add_argument("--old-upto", default="013_load")
    parser.add_argument("--stored", type=int, default=0)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--backend", choices=["duckdb", "postgresql"], default="duckdb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.backend == "duckdb":
            _run(str(tmp / "{name}.duckdb"), tmp, args.old, args)
            return
        import adbc_driver_postgresql.dbapi as pg

        from tests.services import postgres_server

        with contextlib.ExitStack() as stack:
            admin = stack.enter_context(postgres_server())
            with pg.connect(admin, autocommit=True) as conn, conn.cursor() as cursor:
                for name in ("old", "new"):
                    cursor.execute(f"CREATE DATABASE agg_{name}")
            base = admin.rsplit("/", 1)[0]
            _run(base + "/agg_{name}", tmp, args.old, args)


if __name__ == "__main__":
    main()
