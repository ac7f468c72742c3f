"""Synthetic page-view events, built column-wise (millions per second), and bulk loads.

The synthetic set (`events`: sessions of 5 consecutive ids, 200 pages) serves the
reads (query benchmark) and the live benchmark's puts only; ingest is measured
with the realistic stream (`stream.py`). The query benchmark's rows go straight into
`tb_pageview_event` (the table `va_pageview_event` reads) by the fastest bulk
path of each store, bypassing the ingest pipeline on purpose.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "EVENT_COLUMNS",
    "copy_duckdb",
    "events",
    "load_duckdb",
    "load_postgres",
    "migrate",
]

UTC = dt.UTC
EVENT_COLUMNS = [
    "event_id",
    "session_id",
    "page_url",
    "recorded_at",
    "user_id",
    "referrer",
    "user_agent",
    "duration_s",
    "properties",
]
_AGENTS = pa.array(
    [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    ]
)


def _text(prefix: str, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(values, pa.string()), "")


def events(
    n: int,
    start: int = 0,
    day: dt.date = dt.date(2024, 1, 15),
    tag: str = "q",
    pages: int = 200,
    views_per_session: int = 5,
) -> pa.Table:
    """`n` events with ids `{tag}-{start}` … on UTC day `day`, about 150 bytes each.

    Sessions hold `views_per_session` consecutive events; pages are spread over
    `pages` URLs; a third have no referrer; a tenth carry JSON properties.
    """
    ids = pa.array(np.arange(start, start + n, dtype=np.int64))
    sessions = pc.divide(ids, views_per_session)
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=UTC)
    # A session's views a few seconds apart, sessions spread over the day.
    seconds = pc.add(
        pc.bit_wise_and(pc.multiply(sessions, 7919), 0xFFFF),
        pc.multiply(pc.subtract(ids, pc.multiply(sessions, views_per_session)), 11),
    )
    seconds = pc.min_element_wise(seconds, pa.scalar(86_399, pa.int64()))
    recorded = pc.add(
        pa.scalar(midnight, pa.timestamp("us", "UTC")),
        pc.cast(pc.multiply(seconds, 1_000_000), pa.duration("us")),
    )
    page = pc.bit_wise_and(pc.multiply(ids, 2_654_435_761), 0x7FFFFFFF)
    page = pc.subtract(page, pc.multiply(pc.divide(page, pages), pages))  # page % pages
    ref_mask = pc.equal(pc.bit_wise_and(ids, 3), 0)
    prop_mask = pc.equal(pc.subtract(ids, pc.multiply(pc.divide(ids, 10), 10)), 0)
    referrer = _text("https://search.example.com/q?ref=", pc.bit_wise_and(ids, 63))
    properties = pc.binary_join_element_wise(
        '{"ab": "variant-', pc.cast(pc.bit_wise_and(ids, 1), pa.string()), '"}', ""
    )
    return pa.table(
        {
            "event_id": _text(f"{tag}-", ids),
            "session_id": _text(f"{tag}-s-", sessions),
            "page_url": _text("/page/", page),
            "recorded_at": recorded,
            "user_id": _text("", pc.divide(sessions, 3)),
            "referrer": pc.if_else(ref_mask, pa.scalar(None, pa.string()), referrer),
            "user_agent": _AGENTS.take(pc.bit_wise_and(ids, 3)),
            "duration_s": pc.multiply(pc.cast(pc.bit_wise_and(ids, 255), pa.float64()), 0.5),
            "properties": pc.if_else(prop_mask, properties, pa.scalar(None, pa.string())),
        }
    )


def migrate(db: str, data_dir: Path) -> None:
    """Apply flightdeck's migrations (what `serve` does first), from this process."""
    from flightdeck.views import StoreOptions, migrations, open_store

    store = open_store(StoreOptions(db=db, data_dir=data_dir))
    try:
        migrations.apply(store, migrations.load_migrations(store.backend))
    finally:
        store.close()


def load_postgres(url: str, table: pa.Table) -> None:
    """COPY (through ADBC's bulk ingest) into tb_pageview_event, then VACUUM ANALYZE so
    that no contender pays for setting hint bits on its first read."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url) as conn, conn.cursor() as cursor:
        cursor.adbc_ingest("flightdeck_bench_load", table, mode="create", temporary=True)
        columns = ", ".join(EVENT_COLUMNS)
        values = columns.replace("properties", "CAST(properties AS JSON)")
        cursor.execute(
            f"INSERT INTO tb_pageview_event ({columns}) SELECT {values} FROM flightdeck_bench_load"
        )
        cursor.execute("DROP TABLE flightdeck_bench_load")
        conn.commit()
    with pg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tb_pageview_event")


def load_duckdb(path: Path, table: pa.Table) -> None:
    """Append through DuckDB's own Arrow scan (the file must not be open elsewhere)."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.register("flightdeck_bench_load", table)
        columns = ", ".join(EVENT_COLUMNS)
        values = columns.replace("properties", "CAST(properties AS JSON)")
        con.execute(
            f"INSERT INTO tb_pageview_event ({columns}) SELECT {values} FROM flightdeck_bench_load"
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()


def copy_duckdb(path: Path, to: Path) -> Path:
    """A byte copy of a closed DuckDB file: a second process cannot open the server's
    file while the server holds it, so the direct ADBC contender reads an identical copy."""
    for suffix in ("", ".wal"):
        src = Path(str(path) + suffix)
        dst = Path(str(to) + suffix)
        if dst.exists():
            dst.unlink()
        if src.exists():
            shutil.copyfile(src, dst)
    return to
