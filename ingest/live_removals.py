"""Rows deleted from a live view, recorded so that live subscribers hear of them.

A live subscriber holds rows; a DELETE (a rollup row whose events fell to 0,
a reaggregate repair) leaves no row with a newer `version` to publish. So the
deleting transaction first notes the keys it is about to delete in
`tb_live_removal` with its version; the publisher sends them as a `remove`
message with that version's updates, and forgets them once published.

Keys are kept as text (one array per row, the view's key columns in order):
one table serves every view whatever its key types; the publisher casts them
back with the view's schema.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from flightdeck.views import Store

from .rollup_sql import NULL_TEXT

__all__ = ["key_text", "record_removals", "removal_views", "removed_keys"]


def key_text(keys: tuple[str, ...] | list[str], alias: str = "") -> str:
    """SQL for a row's key as a text array (the same in DuckDB and PostgreSQL), as the
    view shows it: a rollup table keeps a NULL dimension as NULL_TEXT, its view as NULL."""
    prefix = f"{alias}." if alias else ""
    cast = (f"NULLIF(CAST({prefix}{k} AS TEXT), {NULL_TEXT})" for k in keys)
    return "ARRAY[" + ", ".join(cast) + "]"


def record_removals(
    cursor, view: str, table: str, keys: tuple[str, ...] | list[str], where: str, version: int
) -> None:
    """Before `DELETE FROM {table} WHERE {where}`, in the same transaction: note the keys
    of the rows it will delete as removed from live view `view` by `version`.

    `table` may carry an alias that `where` uses ("tb_pageview_hourly a"). A row the
    same version writes again is not reported: the publisher sends only keys the view
    no longer holds, so calling this before a delete-and-recount is right too."""
    cursor.execute(
        f"INSERT INTO tb_live_removal (view, version, key) "
        f"SELECT '{view}', {int(version)}, {key_text(keys)} FROM {table} WHERE {where}"
    )


def removal_views(store: Store, version: int) -> set[str]:
    """The views `version` recorded deleted rows of."""
    sql = f"SELECT DISTINCT view FROM tb_live_removal WHERE version = {int(version)}"
    with store.read_internal(sql) as reader:
        return set(reader.read_all().column("view").to_pylist())


def removed_keys(store: Store, view: str, keys: tuple[str, ...], version: int) -> pa.Table:
    """The keys (typed as `view` has them) and `version` of rows `version` deleted from `view`
    that the view does not hold again now."""
    sql = (
        f"SELECT DISTINCT r.key FROM tb_live_removal r WHERE r.view = '{view}' "
        f"AND r.version = {int(version)} AND NOT EXISTS "
        f"(SELECT 1 FROM {view} t WHERE t.version >= {int(version)} "  # written again since
        f"AND {key_text(keys, 't')} IS NOT DISTINCT FROM r.key)"
    )
    with store.read_internal(sql) as reader:
        texts = reader.read_all().column("key")
    with store.read_internal(f"SELECT {', '.join(keys)} FROM {view} LIMIT 0") as reader:
        schema = reader.schema
    columns = {
        k: pc.cast(pc.list_element(texts, i), schema.field(k).type) for i, k in enumerate(keys)
    }
    columns["version"] = pa.array([int(version)] * len(texts), pa.int64())
    return pa.table(columns)
