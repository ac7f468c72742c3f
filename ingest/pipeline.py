"""The one ingest pipeline: validate, dedupe, append raw events, keep aggregates exact, commit.

Every entry point (DoPut, and the NATS worker to come) goes through `ingest()`.
A call is one transaction: every row is committed or none. Batches are
validated and staged one at a time into a temporary table, so memory holds
one batch, not the whole put; the store holds the rest until commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
from flightdeck.views import Store

from . import aggregates
from .events import EVENT_SCHEMA, normalise

__all__ = ["IngestResult", "ingest"]

_STAGE = "flightdeck_stage"
# DuckDB 2.0's ADBC ingest fails on batches larger than its 2,048-row vectors.
_STAGE_ROWS = {"duckdb": 2048, "postgresql": 65_536}
_COLUMNS = ", ".join(EVENT_SCHEMA.names)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    version: int | None  # the commit's version; None when nothing new was written


def ingest(store: Store, batches: Iterable[pa.RecordBatch]) -> IngestResult:
    """Ingest `batches` atomically; InvalidBatch (nothing written) on the first bad row."""
    with store.write() as conn, conn.cursor() as cursor:
        staged = _stage(cursor, batches, _STAGE_ROWS[store.backend])
        if staged == 0:
            conn.rollback()
            return IngestResult(0, 0, None)
        accepted = _append_new(cursor)
        version = None
        if accepted:
            version = _next_version(cursor)
            aggregates.recompute(cursor, version)
        for table in (_STAGE, "flightdeck_new"):
            cursor.execute(f"DROP TABLE {table}")
        conn.commit()
    return IngestResult(accepted, staged - accepted, version)


def _stage(cursor, batches: Iterable[pa.RecordBatch], chunk_rows: int) -> int:
    rows = 0
    for batch in batches:
        events = normalise(batch, first_row=rows)
        rows += batch.num_rows
        if events.num_rows == 0:
            continue
        reader = pa.Table.from_batches([events]).to_reader(max_chunksize=chunk_rows)
        cursor.adbc_ingest(_STAGE, reader, mode="create_append", temporary=True)
    return rows


def _append_new(cursor) -> int:
    """Dedupe within the put and against stored events; append what is new."""
    cursor.execute(
        f"""CREATE TEMP TABLE flightdeck_new AS
            SELECT {_COLUMNS} FROM (
                SELECT s.*, row_number() OVER (PARTITION BY event_id ORDER BY recorded_at) AS rn
                FROM {_STAGE} s) t
            WHERE rn = 1 AND NOT EXISTS (
                SELECT 1 FROM tb_pageview_event e WHERE e.event_id = t.event_id)"""
    )
    columns = _COLUMNS.replace("properties", "CAST(properties AS JSON)")
    cursor.execute(
        f"INSERT INTO tb_pageview_event ({_COLUMNS}) SELECT {columns} FROM flightdeck_new "
        "ON CONFLICT (event_id) DO NOTHING"
    )
    cursor.execute("SELECT count(*) FROM flightdeck_new")
    return int(cursor.fetchall()[0][0])  # drain: an unread DuckDB stream aborts the txn


def _next_version(cursor) -> int:
    cursor.execute("SELECT nextval('sq_pageview_version')")
    return int(cursor.fetchall()[0][0])  # drain: an unread DuckDB stream aborts the txn
