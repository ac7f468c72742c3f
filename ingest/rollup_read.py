"""What a fold reads: every event of the visits a commit touched, read once for all rollups.

A visit is a session within one bucket of a rollup's grain, so rollups of other
grains or other event types touch other visits. Reading each group's visits
from the store on its own cost a read of the commit's events per group. One
read serves them all: the visits of the coarsest grain, over the union of the
event types, hold every event any group's visits hold (an hour's visit lies in
its day's). Each group then takes its own rows from that read: its types, its
buckets, and only the visits the commit touched in its grain, so a group never
carries a visit that did not change (such a visit would only add and take back
the same contribution).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from flightdeck.views.rollup_spec import Rollup

from .rollup_sql import bucket, listed_types, source_sql

__all__ = [
    "EVENTS",
    "SESSION_VALUES",
    "Scope",
    "group_events",
    "read_touched",
    "session_fields",
    "ts_literal",
]

READ, EVENTS = "fd_r_read", "fd_r_event"
SESSION_VALUES = ("source", "medium", "campaign")  # from a visit's first event
_GRAINS = ("hour", "day", "week", "month")


@dataclass(frozen=True)
class Scope:
    """Which visits a pass reads: the commit's (`new` given) or whole buckets."""

    new: str | None  # the new events' table; None: every event of `where`'s buckets is new
    where: str = "TRUE"  # for a rebuild: the raw events' time ranges


def read_touched(cursor, backend: str, groups: Sequence[Sequence[Rollup]], scope: Scope) -> bool:
    """fd_r_read: the events of every visit in scope of any rollup of `groups`, `is_new`
    if the commit added it; False when there is none."""
    grain = max((g[0].grain for g in groups), key=_GRAINS.index)
    types = _union_types(groups)
    columns = dict.fromkeys(["event_type", *_columns_read(groups)])
    picked = ", ".join(f"s.{c}" for c in columns)
    if scope.new is None:
        in_ranges = scope.where.replace("recorded_at", "s.recorded_at")
        cursor.execute(
            f"""CREATE TEMP TABLE {READ} AS SELECT {picked}, TRUE AS is_new
                FROM ({source_sql(types)}) s WHERE {in_ranges}"""
        )
        return True
    start = f"date_trunc('{grain}', timezone('UTC', recorded_at))"
    cursor.execute(
        f"""CREATE TEMP TABLE fd_r_visit AS
            SELECT DISTINCT session_id, timezone('UTC', {start}) AS b_start,
                   timezone('UTC', {start} + INTERVAL '1 {grain}') AS b_end
            FROM {scope.new} WHERE {_type_filter(types)}"""
    )
    cursor.execute("SELECT min(b_start), max(b_end) FROM fd_r_visit")
    lo, hi = cursor.fetchall()[0]
    if lo is None:
        cursor.execute("DROP TABLE fd_r_visit")
        return False
    if backend == "postgresql":
        cursor.execute("ANALYZE fd_r_visit")  # temp tables lack statistics
    # DuckDB: the visits' whole time span as constants too, so it reads only the
    # row groups of that span (zone maps) instead of joining the whole table.
    # PostgreSQL probes its (session_id, recorded_at) index per visit instead: a
    # constant range there is the whole bucket, which it would scan.
    span = (
        f"s.recorded_at >= {ts_literal(lo)} AND s.recorded_at < {ts_literal(hi)}"
        if backend == "duckdb"
        else "TRUE"
    )
    cursor.execute(
        f"""CREATE TEMP TABLE {READ} AS
            SELECT {picked}, n.event_id IS NOT NULL AS is_new
            FROM ({source_sql(types)}) s
            JOIN fd_r_visit v ON s.session_id = v.session_id
                 AND s.recorded_at >= v.b_start AND s.recorded_at < v.b_end
            LEFT JOIN {scope.new} n ON n.event_id = s.event_id
            WHERE {span}"""
    )
    cursor.execute("DROP TABLE fd_r_visit")
    return True


def group_events(cursor, groups: Sequence[Sequence[Rollup]], group: Sequence[Rollup]) -> None:
    """fd_r_event: the rows of fd_r_read that `group`'s visits hold, with their bucket `b`
    and only the columns its rollups read (each wide text column costs a copy)."""
    first = group[0]
    b = bucket(first.grain, "a.recorded_at")
    picked = ", ".join(f"a.{c}" for c in _columns_read([group]))
    where = _type_filter(first.events, "a.")
    touched = ""
    if _narrower(groups, first):
        # Only the visits the commit touched in this group's grain and types: a join
        # on them (distinct), which both engines run as one hash join.
        touched = f"""JOIN (SELECT DISTINCT session_id, {bucket(first.grain, "recorded_at")} AS b
                     FROM {READ} WHERE is_new AND {_type_filter(first.events)}) t
                   ON t.session_id = a.session_id AND t.b = {b}"""
    cursor.execute(
        f"""CREATE TEMP TABLE {EVENTS} AS SELECT {picked}, {b} AS b, a.is_new
            FROM {READ} a {touched} WHERE {where}"""
    )


def _narrower(groups: Sequence[Sequence[Rollup]], first: Rollup) -> bool:
    """Whether the read holds visits that `first`'s group did not touch."""
    widest = max((g[0].grain for g in groups), key=_GRAINS.index)
    union = _union_types(groups)
    if first.events is None or union is None:
        return first.grain != widest or first.events != union
    return first.grain != widest or set(first.events) != set(union)


def _union_types(groups: Sequence[Sequence[Rollup]]) -> tuple[str, ...] | None:
    if any(g[0].events is None for g in groups):
        return None
    return tuple(sorted({t for g in groups for t in g[0].events or ()}))


def _columns_read(groups: Sequence[Sequence[Rollup]]) -> list[str]:
    """The event columns the rollups of `groups` read."""
    columns = ["event_id", "session_id", "recorded_at", "user_id", "is_view", "duration_s"]
    session = session_fields([r for g in groups for r in g])
    if session & {"entry_page", "exit_page"}:
        columns.append("path")  # a visit's entry and exit pages
    columns += [c for c in SESSION_VALUES if c in session]  # from a visit's first event
    for rollup in (r for g in groups for r in g):
        for dimension in rollup.dimensions:
            if dimension.kind == "property":
                columns.append("properties")
            elif dimension.kind != "session":
                columns.append(dimension.field)
        if any(m.key for m in rollup.measures):
            columns.append("properties")
    return list(dict.fromkeys(columns))


def session_fields(rollups: Sequence[Rollup]) -> set[str]:
    """The visit-level dimensions (entry_page, exit_page, source, …) `rollups` group by."""
    return {d.field for r in rollups for d in r.dimensions if d.kind == "session"}


def _type_filter(types: tuple[str, ...] | None, alias: str = "") -> str:
    if types is None:
        return "TRUE"
    return f"{alias}event_type IN ({listed_types(types)})"


def ts_literal(at: dt.datetime) -> str:
    """`at` as a TIMESTAMPTZ literal, in UTC (both backends read it the same)."""
    return f"CAST('{at.astimezone(dt.UTC).isoformat()}' AS TIMESTAMPTZ)"
