"""Fill the derived columns of events stored before migration 017.

SQL has no user-agent parser, and the URL rules written twice more (in each
dialect) would drift from ingest/derived/: the one implementation fills them.
A row stored since always has a `device` (`unknown` without a user agent), so
`device IS NULL` marks exactly the rows to fill. Each chunk is its own
transaction in the writer's turn: an interrupted fill resumes where it stopped,
and ingest keeps running beside it between chunks.
"""

from __future__ import annotations

import pyarrow as pa
from flightdeck.views import Store

from .derived import DERIVED_SCHEMA, derive
from .turns import take_turn

__all__ = ["fill_derived"]

_CHUNK_ROWS = 50_000
_FILL = "flightdeck_derived_fill"
_INGEST_ROWS = 2048  # DuckDB's ADBC ingest fails on larger batches (see append.py)
_READ = (
    "SELECT event_id, page_url, referrer, user_agent, CAST(properties AS TEXT) AS properties "
    "FROM tb_pageview_event WHERE device IS NULL LIMIT {n}"
)
_SET = ", ".join(f"{name} = f.{name}" for name in DERIVED_SCHEMA.names)
_UPDATE = (
    f"UPDATE tb_pageview_event SET {_SET} FROM {_FILL} f "
    "WHERE tb_pageview_event.event_id = f.event_id"
)


def fill_derived(store: Store, chunk_rows: int = _CHUNK_ROWS) -> int:
    """Derive and store the columns of every event without them; how many were filled."""
    filled = 0
    while (done := _fill_chunk(store, chunk_rows)) > 0:
        filled += done
    return filled


def _fill_chunk(store: Store, chunk_rows: int) -> int:
    with store.write() as conn, conn.cursor() as cursor:
        take_turn(cursor, store.backend)
        cursor.execute(_READ.format(n=int(chunk_rows)))
        events = cursor.fetch_arrow_table().combine_chunks()
        if events.num_rows == 0:
            conn.rollback()
            return 0
        batch = events.to_batches()[0]
        derived = derive(batch)
        fill = pa.Table.from_batches([derived]).add_column(0, "event_id", batch.column("event_id"))
        reader = fill.to_reader(max_chunksize=_INGEST_ROWS)
        cursor.adbc_ingest(_FILL, reader, mode="create", temporary=True)
        cursor.execute(_UPDATE)
        cursor.execute(f"DROP TABLE {_FILL}")
        conn.commit()
        return events.num_rows
