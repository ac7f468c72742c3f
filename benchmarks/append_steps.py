"""Where a put's time goes, old pipeline against this one, side by side (issue 18).

`python -m benchmarks.append_steps BACKEND OLD_COMMIT [PUTS] [ROWS]` loads the
realistic stream (benchmarks/stream.py) into two fresh stores of BACKEND, one
through the pipeline of OLD_COMMIT (its ingest/pipeline.py, loaded from git)
and one through this checkout's, put by put, interleaved: old put i, then new
put i, so the machine's noise falls on both alike. Each put's seconds are split
into stage (validate, adbc_ingest into the temp table), append (dedupe and write
tb_pageview_event, fill flightdeck_new), recompute (aggregates) and the rest
(taking the turn, commits). Prints one line per put and variant, and the ratio.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from flightdeck.ingest import pipeline as new_pipeline
from flightdeck.views import StoreOptions, migrations, open_store

from . import stream
from .postgres_server import DURABLE, PostgresServer

# The step functions' names in the old pipeline and in this one.
_OLD_STEPS = {"_stage": "_stage", "_append_new": "_append_new", "_recompute": "_recompute"}
_OLD_STEPS["append_new"] = "_append_new"  # its name since the append moved to append.py
_NEW_STEPS = {
    "_stage": "_stage",
    "append_new": "_append_new",
    "_recompute": "_recompute",
    # The fold in two steps since the session locks (ingest/session_locks.py).
    "_prepare": "_recompute",
    "_apply": "_recompute",
    # A put held in Arrow (ingest/held_put.py): reading and validating it is its stage.
    "hold": "_stage",
    "append_held": "_append_new",
}


def old_pipeline(commit: str):
    source = subprocess.run(
        ["git", "show", f"{commit}:ingest/pipeline.py"], check=True, capture_output=True, text=True
    ).stdout
    spec = importlib.util.spec_from_loader("flightdeck.ingest.pipeline_old", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "flightdeck.ingest"
    sys.modules[spec.name] = module
    exec(compile(source, "pipeline_old.py", "exec"), module.__dict__)
    return module


def timed(module, steps: dict[str, str], seconds: dict[str, float]) -> None:
    """Wrap the module's step functions so each adds its seconds to `seconds`."""
    for name, step in steps.items():
        original = getattr(module, name, None)
        if original is None:  # a step this version does not have
            continue

        def wrapper(*args, _f=original, _n=step, **kwargs):
            start = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                seconds[_n] += time.perf_counter() - start

        setattr(module, name, wrapper)


def open_stores(backend: str, root: Path, pg: PostgresServer | None):
    stores = []
    for name in ("old", "new"):
        db = str(root / f"{name}.duckdb") if pg is None else pg.create_database(f"steps_{name}")
        store = open_store(StoreOptions(db=db, data_dir=root, statement_timeout_s=600))
        migrations.apply(store, migrations.load_migrations(store.backend))
        stores.append(store)
    return stores


def main() -> None:
    backend, commit = sys.argv[1], sys.argv[2]
    puts = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
    modules = {"old": old_pipeline(commit), "new": new_pipeline}
    seconds = {name: defaultdict(float) for name in modules}
    timed(modules["old"], _OLD_STEPS, seconds["old"])
    timed(modules["new"], _NEW_STEPS, seconds["new"])
    streams = {name: stream.EventStream(17) for name in modules}
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        pg = None
        if backend == "postgresql":
            pg = stack.enter_context(PostgresServer(DURABLE))
        stores = dict(zip(modules, open_stores(backend, root, pg), strict=True))
        totals = defaultdict(float)
        for put in range(puts):
            for name, module in modules.items():
                table = streams[name].take(rows).events
                seconds[name].clear()
                start = time.perf_counter()
                result = module.ingest(stores[name], table.to_batches(max_chunksize=10_000))
                total = time.perf_counter() - start
                totals[name, put] = total
                steps = seconds[name]
                rest = total - sum(steps.values())
                print(
                    f"{backend} put {put} ({put * rows:>9,} stored) {name}: {total:6.2f} s "
                    f"stage {steps['_stage']:5.2f} append {steps['_append_new']:5.2f} "
                    f"recompute {steps['_recompute']:5.2f} rest {rest:5.2f} "
                    f"accepted {result.accepted}",
                    flush=True,
                )
            print(f"  new/old time ratio {totals['new', put] / totals['old', put]:.2f}")
        for store in stores.values():
            store.close()


if __name__ == "__main__":
    main()
