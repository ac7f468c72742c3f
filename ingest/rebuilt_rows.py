"""A rollup's buckets recounted from raw events, written where they differ and only there.

A repair folds every raw event of its buckets again into shadow tables of the
rollup's shape (temporary: they cost no log), then merges them into the rollup:
rows that differ or are new are written with the repair's version, rows no event
supports any more are deleted and noted as removed, equal rows are not touched.
A repair that finds nothing wrong writes nothing: no live update, and on DuckDB
no rewrite of store-sized tables at commit. Float sums and recounted percentiles
compare within a relative 1e-9 (docs/rollups.md "Reaggregate").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from flightdeck.views.rollup_spec import Rollup

from .live_removals import record_removals
from .rollup_tables import create_statements, user_table
from .scalar import scalar

__all__ = ["Shadow", "merge", "merge_users", "sync_rows"]

_TOLERANCE = "1e-9"


@dataclasses.dataclass(frozen=True)
class Shadow:
    """Temporary tables shaped as `rollup`'s, which a fold of `shadow` fills."""

    rollup: Rollup
    shadow: Rollup

    @classmethod
    def create(cls, cursor, rollup: Rollup) -> Shadow:
        shadow = dataclasses.replace(rollup, name=f"fd_shadow_{rollup.name}")
        for statement in create_statements(shadow):
            if statement.startswith("CREATE TABLE "):  # the key's index comes with it
                cursor.execute(statement.replace("CREATE TABLE ", "CREATE TEMP TABLE ", 1))
        return cls(rollup, shadow)

    def drop(self, cursor) -> None:
        for table in (user_table(self.shadow), self.shadow.table):
            if table:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")


def merge(
    cursor,
    shadow: Shadow,
    kept: Sequence[str],
    floats: frozenset[str],
    in_scope: str,
    version: int,
) -> int:
    """Write the shadow's rows into the rollup where they differ; delete (noting them
    removed) the rollup's rows `in_scope` the shadow lacks; how many rows differed."""
    rollup, table, fresh = shadow.rollup, shadow.rollup.table, shadow.shadow.table
    same_key = " AND ".join(f"s.{c} = r.{c}" for c in rollup.key)
    differs = " OR ".join(_differs(c, c in floats) for c in kept) or "FALSE"
    gone = f"({in_scope}) AND NOT EXISTS (SELECT 1 FROM {fresh} s WHERE {same_key})"
    changed = f"FROM {fresh} s LEFT JOIN {table} r ON {same_key} WHERE r.{rollup.key[0]} IS NULL"
    changed += f" OR {differs}"
    differed = scalar(
        cursor,
        f"SELECT (SELECT count(*) FROM {table} r WHERE {gone}) + (SELECT count(*) {changed})",
    )
    if not differed:
        return 0
    record_removals(cursor, rollup.view, f"{table} r", rollup.key, gone, version)
    cursor.execute(f"DELETE FROM {table} r WHERE {gone}")
    columns = [*rollup.key, *kept]
    update = ", ".join(f"{c} = excluded.{c}" for c in kept)
    cursor.execute(
        f"""INSERT INTO {table} ({", ".join(columns)}, version, computed_at)
            SELECT {", ".join(f"s.{c}" for c in columns)}, {int(version)}, CURRENT_TIMESTAMP
            {changed}
            ON CONFLICT ({", ".join(rollup.key)}) DO UPDATE SET {update},
                version = excluded.version, computed_at = excluded.computed_at"""
    )
    return int(differed)


def merge_users(cursor, shadow: Shadow, in_scope: str) -> None:
    """The users' visits per row (kept to count visitors) as the shadow has them."""
    users, fresh = user_table(shadow.rollup), user_table(shadow.shadow)
    if users and fresh:
        sync_rows(cursor, users, fresh, in_scope, [*shadow.rollup.key, "user_id"], ["visits"])


def sync_rows(
    cursor,
    table: str,
    fresh: str,
    in_scope: str,
    key: Sequence[str],
    values: Sequence[str] = (),
) -> None:
    """Make `table`'s rows `in_scope` those of `fresh` (same columns), writing only
    what differs: rows not in `fresh` as they are go, rows whose key `table` lacks then
    come in. For state without versions or live subscribers (users, session-days)."""
    same_key = " AND ".join(f"s.{c} = r.{c}" for c in key)
    same = " AND ".join([same_key, *(f"s.{c} = r.{c}" for c in values)])
    columns = ", ".join([*key, *values])
    cursor.execute(
        f"DELETE FROM {table} r WHERE ({in_scope}) "
        f"AND NOT EXISTS (SELECT 1 FROM {fresh} s WHERE {same})"
    )
    cursor.execute(
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {fresh} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} r WHERE {same_key})"
    )


def _differs(column: str, is_float: bool) -> str:
    """SQL true when the shadow's `s.column` is not the rollup's `r.column` (never NULL)."""
    new, old = f"s.{column}", f"r.{column}"
    if not is_float:
        return f"{new} IS DISTINCT FROM {old}"
    return (
        f"(CASE WHEN {new} IS NULL OR {old} IS NULL THEN {new} IS DISTINCT FROM {old} "
        f"ELSE abs({new} - {old}) > {_TOLERANCE} * greatest(abs({new}), abs({old})) END)"
    )
