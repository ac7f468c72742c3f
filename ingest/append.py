"""Append a staged put's new events to tb_pageview_event; what was appended lands in
`flightdeck_new (session_id, page_url, recorded_at)`, which the aggregates read.

New means: the first sent of each event_id in the put (`flightdeck_seq` is the
arrival order), unless the store holds that id already. Both are found as a
small list of staged rows to skip, `flightdeck_skip`, so the append itself is
one pass over the stage with no sort:

- Repeats within the put: a hash aggregate of the stage's ids (no window sort).
- Ids already stored, by backend, each what measured fastest
  (benchmarks/append_variants.py, 100 k stream rows into 500 k stored):
  DuckDB probes them with a semi-join and appends with a plain INSERT: its
  `ON CONFLICT` checks row by row and cost 2.6x a raw adbc_ingest, the probe
  and plain INSERT 1.0x. The probe reads only the stored events recorded within
  the put's time range (zone maps skip the rest, so it does not grow with the
  store): a resent event carries the time it was recorded. An id stored with
  another time is still caught, by the primary key, which refuses the INSERT;
  the transaction then restarts and probes every stored id (rare, and exact
  either way). PostgreSQL keeps `ON CONFLICT (event_id) DO NOTHING`:
  inserting descends the key's index anyway, so the check is nearly free there,
  while a separate probe cost more than half the insert and grows with the store.

Runs inside the writer's turn (the probe must see what the previous writer
committed) and inside the put's transaction: a refused try is rolled back whole,
skip list included (store_refusal.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .derived import STORED_SCHEMA
from .scalar import scalar

__all__ = ["NEW", "SKIP", "append_new"]

NEW = "flightdeck_new"
SKIP = "flightdeck_skip"
_STAGE = "flightdeck_stage"
_COLUMNS = ", ".join(STORED_SCHEMA.names)
_VALUES = _COLUMNS.replace("properties", "CAST(properties AS JSON)")
# What aggregates.recompute reads (the first three) and the rollups (ingest/rollups.py).
_RETURNED = "session_id, page_url, recorded_at, event_id, user_id"
# DuckDB 2.0's ADBC ingest fails on batches larger than its 2,048-row vectors.
_DUCKDB_INGEST_ROWS = 2048

# Every send of an id after its first in the put.
_REPEATS = (
    f"CREATE TEMP TABLE {SKIP} AS SELECT s.flightdeck_seq FROM {_STAGE} s "
    f"JOIN (SELECT event_id, min(flightdeck_seq) AS first_seq FROM {_STAGE} "
    "GROUP BY event_id HAVING count(*) > 1) r "
    "ON s.event_id = r.event_id AND s.flightdeck_seq > r.first_seq"
)
# Every staged row whose id the store holds (DuckDB only: see above), among the
# events recorded in `{near}`, or all.
_STORED = (
    f"INSERT INTO {SKIP} SELECT s.flightdeck_seq FROM {_STAGE} s "
    "WHERE s.event_id IN (SELECT event_id FROM tb_pageview_event "
    f"WHERE {{near}} AND event_id IN (SELECT event_id FROM {_STAGE}))"
)
_RANGE = f"SELECT min(recorded_at), max(recorded_at) FROM {_STAGE}"
# DuckDB's refusal of a row whose event_id is stored already.
_STORED_KEY = re.compile(r'Duplicate key "event_id: ')
_INSERT = (
    f"INSERT INTO tb_pageview_event ({_COLUMNS}) SELECT {_VALUES} FROM {_STAGE} s "
    f"WHERE NOT EXISTS (SELECT 1 FROM {SKIP} k WHERE k.flightdeck_seq = s.flightdeck_seq)"
)


def append_new(cursor, backend: str, restart: Callable[[], None]) -> int:
    """Append the stage's new events; how many, each also in `flightdeck_new`.

    `restart` rolls the transaction back to where it only had the stage."""
    if backend == "postgresql":
        _append_postgresql(cursor)
    else:
        _append_duckdb(cursor, restart)
    return scalar(cursor, f"SELECT count(*) FROM {NEW}")


def _append_postgresql(cursor) -> None:
    cursor.execute(_REPEATS)
    insert = f"{_INSERT} ON CONFLICT (event_id) DO NOTHING RETURNING {_RETURNED}"
    cursor.execute(
        f"CREATE TEMP TABLE {NEW} (session_id TEXT, page_url TEXT, recorded_at TIMESTAMPTZ, "
        "event_id TEXT, user_id TEXT)"
    )
    cursor.execute(f"WITH appended AS ({insert}) INSERT INTO {NEW} SELECT * FROM appended")


def _append_duckdb(cursor, restart: Callable[[], None]) -> None:
    try:
        _append_duckdb_probed(cursor, _recorded_in_put(cursor))
    except Exception as exc:
        if not _STORED_KEY.search(str(exc)):
            raise
        restart()
        _append_duckdb_probed(cursor, "TRUE")


def _recorded_in_put(cursor) -> str:
    cursor.execute(_RANGE)
    first, last = cursor.fetchone()
    return (
        f"recorded_at BETWEEN CAST('{first.isoformat()}' AS TIMESTAMPTZ) "
        f"AND CAST('{last.isoformat()}' AS TIMESTAMPTZ)"
    )


def _append_duckdb_probed(cursor, near: str) -> None:
    cursor.execute(_REPEATS)
    cursor.execute(_STORED.format(near=near))
    # DuckDB has no data-modifying WITH: the appended rows come back as Arrow.
    cursor.execute(f"{_INSERT} RETURNING {_RETURNED}")
    appended = cursor.fetch_arrow_table()
    reader = appended.to_reader(max_chunksize=_DUCKDB_INGEST_ROWS)
    cursor.adbc_ingest(NEW, reader, mode="create", temporary=True)
