"""Ways to append one staged put, timed statement by statement (issue 18).

`python -m benchmarks.append_variants BACKEND [STORED] [ROWS] [ROUNDS]` fills a
fresh store with STORED events of the realistic stream (benchmarks/stream.py),
stages the next ROWS as a put stages them (flightdeck_stage), then times each
variant's statements in a transaction that is rolled back, variants interleaved
for ROUNDS rounds. `raw` is the ceiling: adbc_ingest of the put's first sends
straight into tb_pageview_event.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
from flightdeck.ingest import append, pipeline
from flightdeck.views import StoreOptions, migrations, open_store

from . import stream
from .postgres_server import DURABLE, PostgresServer

_COLUMNS = append._COLUMNS
_VALUES = _COLUMNS.replace("properties", "CAST(properties AS JSON)")
_OLD = (
    f"INSERT INTO tb_pageview_event ({_COLUMNS}) SELECT {_VALUES} FROM ("
    "SELECT s.*, row_number() OVER (PARTITION BY event_id ORDER BY flightdeck_seq) AS rn "
    "FROM flightdeck_stage s) t WHERE rn = 1 "
    "ON CONFLICT (event_id) DO NOTHING"
)


def old(cursor, backend: str, put: pa.Table) -> dict[str, float]:
    return _appended(cursor, backend, _OLD)


_REPEATS = (
    "CREATE TEMP TABLE flightdeck_skip AS SELECT s.flightdeck_seq FROM flightdeck_stage s "
    "JOIN (SELECT event_id, min(flightdeck_seq) AS first_seq FROM flightdeck_stage "
    "GROUP BY event_id HAVING count(*) > 1) r "
    "ON s.event_id = r.event_id AND s.flightdeck_seq > r.first_seq"
)
_STORED = (
    "INSERT INTO flightdeck_skip SELECT s.flightdeck_seq FROM flightdeck_stage s "
    "WHERE s.event_id IN (SELECT event_id FROM tb_pageview_event "
    "WHERE event_id IN (SELECT event_id FROM flightdeck_stage))"
)
_FRESH = (
    f"SELECT {_VALUES} FROM flightdeck_stage s WHERE NOT EXISTS "
    "(SELECT 1 FROM flightdeck_skip k WHERE k.flightdeck_seq = s.flightdeck_seq)"
)


def _appended(cursor, backend: str, insert: str) -> dict[str, float]:
    returning = f"{insert} RETURNING session_id, page_url, recorded_at"
    if backend == "postgresql":
        return _steps(
            cursor,
            {
                "create_new": "CREATE TEMP TABLE flightdeck_new (session_id TEXT, "
                "page_url TEXT, recorded_at TIMESTAMPTZ)",
                "insert": f"WITH a AS ({returning}) INSERT INTO flightdeck_new SELECT * FROM a",
            },
        )
    times = _steps(cursor, {"insert": returning})
    start = time.perf_counter()
    rows = cursor.fetch_arrow_table()
    cursor.adbc_ingest("flightdeck_new", rows.to_reader(max_chunksize=2048), mode="create")
    times["new_back"] = time.perf_counter() - start
    return times


def repeat_conflict(cursor, backend: str, put: pa.Table) -> dict[str, float]:
    """In-put repeats by a hash aggregate, stored ids by ON CONFLICT."""
    times = _steps(cursor, {"repeats": _REPEATS})
    insert = (
        f"INSERT INTO tb_pageview_event ({_COLUMNS}) {_FRESH} ON CONFLICT (event_id) DO NOTHING"
    )
    return times | _appended(cursor, backend, insert)


def repeat_probe(cursor, backend: str, put: pa.Table) -> dict[str, float]:
    """In-put repeats by a hash aggregate, stored ids by a semi-join, a plain INSERT."""
    times = _steps(cursor, {"repeats": _REPEATS, "stored": _STORED})
    insert = f"INSERT INTO tb_pageview_event ({_COLUMNS}) {_FRESH}"
    return times | _appended(cursor, backend, insert)


def current(cursor, backend: str, put: pa.Table) -> dict[str, float]:
    """ingest/append.py as the pipeline runs it (no restart needed: no resend moved in time)."""
    start = time.perf_counter()
    append.append_new(cursor, backend, _no_restart)
    return {"append_new": time.perf_counter() - start}


def _no_restart() -> None:
    raise AssertionError("a resend recorded at another time: not in this stream")


def raw(cursor, backend: str, put: pa.Table) -> dict[str, float]:
    chunk = 2048 if backend == "duckdb" else 65_536
    now = pa.scalar(dt.datetime.now(dt.UTC), pa.timestamp("us", "UTC"))
    put = put.append_column("ingested_at", pa.repeat(now, put.num_rows))
    start = time.perf_counter()
    cursor.adbc_ingest("tb_pageview_event", put.to_reader(max_chunksize=chunk), mode="append")
    return {"adbc_ingest": time.perf_counter() - start}


def _steps(cursor, statements: dict[str, str]) -> dict[str, float]:
    times = {}
    for name, sql in statements.items():
        start = time.perf_counter()
        cursor.execute(sql)
        times[name] = time.perf_counter() - start
    return times


VARIANTS = {
    "old": old,
    "repeat_conflict": repeat_conflict,
    "repeat_probe": repeat_probe,
    "current": current,
    "raw": raw,
}


def main() -> None:
    backend = sys.argv[1]
    stored = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    events = stream.EventStream(17)
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if backend == "postgresql":
            pg = stack.enter_context(PostgresServer(DURABLE))
            db = pg.create_database("variants")
        else:
            db = str(root / "v.duckdb")
        store = open_store(StoreOptions(db=db, data_dir=root, statement_timeout_s=600))
        migrations.apply(store, migrations.load_migrations(store.backend))
        for _ in range(stored // 100_000):
            pipeline.ingest(store, events.take(100_000).events.to_batches(max_chunksize=10_000))
        put = events.take(rows)
        first = put.first_sends().select(_COLUMNS.split(", "))
        totals = defaultdict(float)
        with store.write() as conn, conn.cursor() as cursor:
            batches = put.events.to_batches(max_chunksize=10_000)
            validated = pipeline._Validated(batches, frozenset(), normalised=False)
            pipeline._stage(cursor, validated, 2048, validated)
            conn.commit()
            for _ in range(rounds):
                for name, variant in VARIANTS.items():
                    times = variant(cursor, backend, first)
                    conn.rollback()
                    totals[name] += sum(times.values())
                    steps = " ".join(f"{k} {v:.3f}" for k, v in times.items())
                    print(
                        f"{backend} {stored:,} stored {name}: {sum(times.values()):.3f} s {steps}"
                    )
        for name in VARIANTS:
            print(f"{name}: {totals[name] / totals['raw']:.2f}x raw")
        store.close()


if __name__ == "__main__":
    main()
