"""Keep every declared rollup exact, in the commit that appends its events.

A commit's new events name the visits they fall in (a session within one
bucket of the rollup's grain). For each such visit the rollup statements read
its events, as they were before the commit and as they are now, and turn
each into its contribution to the rows it falls in: events, views, one
visit, a bounce, its duration, times on page, property sums, its user. The
row's new sums are its old ones plus the visits' new contributions minus
their old ones; so a late event, or a second view that ends a bounce, or a
later first view that moves a visit to another entry page, changes exactly
the rows it should. A commit reads its visits' events once for every rollup
(an index range each, never the whole bucket: rollup_read.py). Percentiles,
min and max are not sums: the touched rows are recounted from their bucket's
raw events.

Active users (dau, wau, mau) keep one shared state, the users active each day
(`tb_user_day`), and recount the days whose 1-, 7- or 30-day window a commit's
new user-days fall in.

A commit's fold is in two steps: `prepare` reads the visits and works out each
rollup's deltas into temp tables, under the commit's session locks, beside other
commits (session_locks.py); `apply` writes them, and counts active users, in the
writer's turn.

`rebuild` recomputes buckets from raw events alone (a repair, a backfill).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flightdeck.views.rollup_spec import RECOUNTED, Rollup

from . import rebuilt_rows, retention
from .live_removals import record_removals
from .rollup_read import (
    EVENTS,
    READ,
    SESSION_VALUES,
    Scope,
    group_events,
    read_touched,
    session_fields,
    ts_literal,
)
from .rollup_sql import (
    bucket,
    dimension_sql,
    first_by,
    number_property,
    percentile,
    source_sql,
    state_columns,
)
from .rollup_tables import user_table

__all__ = ["NEW_EVENTS", "Prepared", "apply", "fold", "prepare", "rebuild"]

# The commit's new events of every type: event_id, event_type, session_id,
# recorded_at, user_id (filled by the pipeline before the fold).
NEW_EVENTS = "flightdeck_new_events"
_PARTS = "fd_r_part"
_ROWS, _VISIT_ROWS = "fd_r_row", "fd_r_visit_row"
_WORK_MEM = "128MB"


@dataclass(frozen=True)
class _Deltas:
    """What a commit adds to one rollup, in temp tables named for its place in the fold."""

    rollup: Rollup
    place: int

    @property
    def delta(self) -> str:
        return f"fd_r_delta_{self.place}"

    @property
    def user_delta(self) -> str:
        return f"fd_r_user_delta_{self.place}"

    @property
    def user_count(self) -> str:
        return f"fd_r_user_count_{self.place}"


@dataclass(frozen=True)
class Prepared:
    """A fold read and worked out (`prepare`), to be written (`apply`)."""

    rollups: tuple[Rollup, ...]
    deltas: tuple[_Deltas, ...]


def fold(cursor, backend: str, rollups: Sequence[Rollup], version: int) -> None:
    """Fold NEW_EVENTS (already appended) into every rollup."""
    apply(cursor, backend, prepare(cursor, backend, rollups), version)


def prepare(cursor, backend: str, rollups: Sequence[Rollup]) -> Prepared:
    """Read the visits of NEW_EVENTS (appended, their sessions locked) and work out what
    they add to each rollup; nothing shared is written (session_locks.py)."""
    if backend == "postgresql":
        # The visits' window pass and group-bys sort and hash a few hundred thousand
        # rows: within memory, not spilled past the default 4 MB (this transaction only).
        cursor.execute(f"SET LOCAL work_mem = '{_WORK_MEM}'")
    groups = _sharing(r for r in rollups if not r.active_users)
    return Prepared(tuple(rollups), _prepare_groups(cursor, backend, groups, Scope(NEW_EVENTS)))


def apply(cursor, backend: str, prepared: Prepared, version: int) -> None:
    """In the writer's turn: add what `prepare` worked out to the rollups' rows, stamped
    with `version`; count the active users of NEW_EVENTS' days."""
    if any(r.active_users for r in prepared.rollups):
        _add_user_days(cursor, f"SELECT recorded_at, user_id FROM {NEW_EVENTS}")
    for rollup in prepared.rollups:
        if rollup.active_users:
            _recount_active_users(cursor, rollup, version, "fd_r_new_user_days")
    _drop(cursor, "fd_r_new_user_days")
    _apply_groups(cursor, backend, prepared.deltas, version)


def _sharing(rollups: Iterable[Rollup]) -> list[list[Rollup]]:
    """Rollups of one grain over the same event types read the same visits: one read
    and one pass over them serve all."""
    groups: dict[tuple, list[Rollup]] = {}
    for rollup in rollups:
        groups.setdefault((rollup.grain, rollup.events), []).append(rollup)
    return list(groups.values())


def rebuild(
    cursor, backend: str, rollups: Sequence[Rollup], days: Sequence[dt.date], version: int
) -> int:
    """Recompute the buckets holding `days` from raw events; how many rows differed.

    Buckets that reach into a day whose raw events retention deleted are left as
    they are: what remains cannot give them back (as the page-view aggregates)."""
    changed = 0
    for rollup in rollups:
        ranges = _bucket_ranges(cursor, rollup, days)
        if not ranges:
            continue
        where = " OR ".join(f"(recorded_at >= {lo} AND recorded_at < {hi})" for lo, hi in ranges)
        if rollup.active_users:
            changed += _rebuild_active_users(cursor, rollup, version, where, days)
        else:
            changed += _rebuild_one(cursor, backend, rollup, version, where)
    return changed


# ---- one rollup, one pass -------------------------------------------------------------


def _fold_groups(
    cursor, backend: str, groups: list[list[Rollup]], version: int, scope: Scope
) -> None:
    """Fold the visits in scope into each rollup of `groups` (each of one grain and
    one set of event types), from one read of their events."""
    _apply_groups(cursor, backend, _prepare_groups(cursor, backend, groups, scope), version)


def _prepare_groups(
    cursor, backend: str, groups: list[list[Rollup]], scope: Scope
) -> tuple[_Deltas, ...]:
    """Each rollup's deltas from the visits in scope, read once for all groups."""
    deltas: list[_Deltas] = []
    if groups and read_touched(cursor, backend, groups, scope):
        for group in groups:
            group_events(cursor, groups, group)
            _visit_rows(cursor, backend, group)
            for rollup in group:
                deltas.append(_Deltas(rollup, len(deltas)))
                _parts(cursor, backend, deltas[-1])
            _drop(cursor, _ROWS, _VISIT_ROWS, EVENTS)
        _drop(cursor, READ)
    return tuple(deltas)


def _apply_groups(cursor, backend: str, deltas: Sequence[_Deltas], version: int) -> None:
    for names in deltas:
        _apply(cursor, names, version)
        if any(m.kind in RECOUNTED for m in names.rollup.measures):
            _recount(cursor, backend, names, version)
        _drop(cursor, names.delta, names.user_delta, names.user_count)


def _visit_rows(cursor, backend: str, group: list[Rollup]) -> None:
    """fd_r_visit_row: each visit of fd_r_event as it is now (sign +1) and as it was
    before the commit (-1, old events only), with what rollups read of a visit;
    fd_r_row: each event both ways, with its visit's values beside it, so that each
    rollup's pass is one group-by. A visit's first values come from ordered
    aggregates, not row_number() windows: a window sorts every row with all its
    columns, an aggregate only the value it keeps."""
    both_ways = f"""(SELECT *, 1 AS sign FROM {EVENTS}
                     UNION ALL SELECT *, -1 AS sign FROM {EVENTS} WHERE NOT is_new)"""
    values = _visit_values(backend, session_fields(group))
    cursor.execute(
        f"""CREATE TEMP TABLE {_VISIT_ROWS} AS
        SELECT sign, b, session_id, count(*) FILTER (WHERE is_view) AS visit_views,
            {_us("max(recorded_at) - min(recorded_at)")} AS visit_span_us,
            min(user_id) AS visit_user_id{"".join(f", {sql} AS {name}" for name, sql in values)}
        FROM {both_ways} e GROUP BY sign, b, session_id"""
    )
    if backend == "postgresql":  # temp tables lack statistics: the join needs them
        cursor.execute(f"ANALYZE {_VISIT_ROWS}")
    carried = ["visit_views", "visit_span_us", "visit_user_id", *(name for name, _ in values)]
    visit_values = ", ".join(f"v.{c}" for c in carried)
    next_view, after = _next_views(group, both_ways)
    cursor.execute(
        f"""CREATE TEMP TABLE {_ROWS} AS
        SELECT e.*, {visit_values}, {next_view} AS next_view_at
        FROM {both_ways} e JOIN {_VISIT_ROWS} v
          ON v.sign = e.sign AND v.b = e.b AND v.session_id = e.session_id {after}"""
    )


def _visit_values(backend: str, fields: set[str]) -> list[tuple[str, str]]:
    """(column, aggregate) for the visit-level values `fields` need, and no more: each
    is carried beside every event row."""
    values = []
    if "entry_page" in fields:
        values.append(("visit_entry_page", first_by(backend, "path", "is_view")))
    if "exit_page" in fields:
        values.append(("visit_exit_page", first_by(backend, "path", "is_view", last=True)))
    values += [(f"visit_{c}", first_by(backend, c, "TRUE")) for c in SESSION_VALUES if c in fields]
    return values


def _next_views(group: list[Rollup], both_ways: str) -> tuple[str, str]:
    """The expression of a view's next view in its visit (time on page), and the join
    that brings it: a window over the views' keys alone, as a window over whole rows
    sorts every column."""
    if not any(m.kind == "time_on_page" for r in group for m in r.measures):
        return "CAST(NULL AS TIMESTAMPTZ)", ""
    return (
        "n.next_view_at",
        f"""
        LEFT JOIN (SELECT sign, event_id, lead(recorded_at) OVER (
                       PARTITION BY sign, b, session_id ORDER BY recorded_at, event_id
                   ) AS next_view_at
                   FROM {both_ways} w WHERE is_view) n
          ON e.is_view AND n.sign = e.sign AND n.event_id = e.event_id""",
    )


def _parts(cursor, backend: str, names: _Deltas) -> None:
    """fd_r_part: per visit, before (sign -1) and now (+1), what it adds to each row of
    the rollup; then the rows' deltas (_deltas)."""
    rollup = names.rollup
    dims = [dimension_sql(d, backend, "o", "o") for d in rollup.dimensions]
    named = ", ".join(
        f"{sql} AS {d.column}" for sql, d in zip(dims, rollup.dimensions, strict=True)
    )
    props = sorted({m.key for m in rollup.measures if m.kind in ("sum", "avg") and m.key})
    prop_sums = "".join(
        f", sum({number_property(backend, k, 'o')}) AS p_sum_{k}"
        f", count({number_property(backend, k, 'o')}) AS p_n_{k}"
        for k in props
    )
    top = (
        "CASE WHEN o.is_view THEN COALESCE(CAST(ROUND(o.duration_s * 1000000) AS BIGINT), "
        f"{_us('o.next_view_at - o.recorded_at')}) END"
    )
    visit = ["o.visit_views", "o.visit_span_us", "o.visit_user_id"]
    group = ", ".join(["o.sign", "o.b", "o.session_id", *visit, *dims])
    cursor.execute(
        f"""CREATE TEMP TABLE {_PARTS} AS
        SELECT o.sign, o.b, o.session_id, o.visit_views, o.visit_span_us,
               o.visit_user_id AS user_id, {named}{"," if named else ""} count(*) AS events,
               count(*) FILTER (WHERE o.is_view) AS views,
               sum({top}) AS top_us, count({top}) AS top_n{prop_sums}
        FROM {_ROWS} o
        GROUP BY {group}"""
    )
    _deltas(cursor, names, props)
    _drop(cursor, _PARTS)


def _deltas(cursor, names: _Deltas, props: list[str]) -> None:
    rollup = names.rollup
    columns = [d.column for d in rollup.dimensions]
    key = ", ".join(["b", *columns])
    sums = {
        "events": "sum(sign * events)",
        "visits": "sum(sign)",
        "views": "sum(sign * views)",
        "anon_visits": "sum(CASE WHEN user_id IS NULL THEN sign ELSE 0 END)",
        "users": "0",
        "bounces": "sum(CASE WHEN visit_views = 1 THEN sign ELSE 0 END)",
        "span_us": "sum(sign * visit_span_us)",
        "top_us": "sum(sign * COALESCE(top_us, 0))",
        "top_n": "sum(sign * top_n)",
    }
    for k in props:
        sums[f"p_sum_{k}"] = f"sum(sign * COALESCE(p_sum_{k}, 0))"
        sums[f"p_n_{k}"] = f"sum(sign * p_n_{k})"
    select = ", ".join(f"{sums[c]} AS {c}" for c in state_columns(rollup))
    cursor.execute(
        f"CREATE TEMP TABLE {names.delta} AS SELECT {key}, {select} FROM {_PARTS} GROUP BY {key}"
    )
    if user_table(rollup):
        cursor.execute(
            f"""CREATE TEMP TABLE {names.user_delta} AS
                SELECT {key}, user_id, sum(sign) AS visits FROM {_PARTS}
                WHERE user_id IS NOT NULL GROUP BY {key}, user_id HAVING sum(sign) <> 0"""
        )


def _apply(cursor, names: _Deltas, version: int) -> None:
    """Add the deltas to the rows (and users), stamp changed rows, drop emptied ones."""
    rollup = names.rollup
    table, bucket_col = rollup.table, rollup.bucket
    columns = [d.column for d in rollup.dimensions]
    on = " AND ".join(f"d.{c} = c.{c}" for c in ["b", *columns])
    users = user_table(rollup)
    if users:
        _apply_users(cursor, names, users, columns)
    sums = state_columns(rollup)
    values = [f"d.{c}" if c != "users" else "COALESCE(c.users, 0)" for c in sums]
    changed = " OR ".join(f"{v} <> 0" for v in values)
    join = f"LEFT JOIN {names.user_count} c ON {on}" if users else ""
    update = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in sums)
    cursor.execute(
        f"""INSERT INTO {table} ({", ".join([bucket_col, *columns, *sums])}, version, computed_at)
            SELECT {", ".join(["d.b", *(f"d.{c}" for c in columns), *values])},
                   {int(version)}, CURRENT_TIMESTAMP
            FROM {names.delta} d {join} WHERE {changed}
            ON CONFLICT ({", ".join(rollup.key)}) DO UPDATE SET {update},
                version = excluded.version, computed_at = excluded.computed_at"""
    )
    emptied = f"version = {int(version)} AND events = 0"
    record_removals(cursor, rollup.view, table, rollup.key, emptied, version)
    cursor.execute(f"DELETE FROM {table} WHERE {emptied}")


def _apply_users(cursor, names: _Deltas, users: str, columns: list[str]) -> None:
    rollup = names.rollup
    key = ", ".join(["b", *columns])
    on = " AND ".join(
        [f"u.{rollup.bucket} = d.b", *(f"u.{c} = d.{c}" for c in columns), "u.user_id = d.user_id"]
    )
    # A user is counted in a row while any of its visits is: count the 0 <-> >0 changes.
    cursor.execute(
        f"""CREATE TEMP TABLE {names.user_count} AS
            SELECT {", ".join(f"d.{c}" for c in ["b", *columns])},
                   sum(CASE WHEN COALESCE(u.visits, 0) = 0 AND d.visits > 0 THEN 1
                            WHEN u.visits > 0 AND u.visits + d.visits = 0 THEN -1
                            ELSE 0 END) AS users
            FROM {names.user_delta} d LEFT JOIN {users} u ON {on}
            GROUP BY {", ".join(f"d.{c}" for c in ["b", *columns])}"""
    )
    cursor.execute(
        f"""INSERT INTO {users} ({", ".join([rollup.bucket, *columns])}, user_id, visits)
            SELECT {key}, user_id, visits FROM {names.user_delta}
            ON CONFLICT ({", ".join(rollup.key)}, user_id)
            DO UPDATE SET visits = {users}.visits + excluded.visits"""
    )
    cursor.execute(
        f"DELETE FROM {users} WHERE visits = 0 "
        f"AND {rollup.bucket} IN (SELECT DISTINCT b FROM {names.user_delta})"
    )


def _recount(cursor, backend: str, names: _Deltas, version: int) -> None:
    """Percentiles, min and max of the rows this pass changed, from their raw events."""
    rollup = names.rollup
    recounted = [m for m in rollup.measures if m.kind in RECOUNTED]
    lo, hi = _rows(cursor, f"SELECT min(b), max(b) FROM {names.delta}")[0]
    if lo is None:
        return
    b = bucket(rollup.grain, "s.recorded_at")
    dims = [dimension_sql(d, backend, "s", "s") for d in rollup.dimensions]
    values = []
    for m in recounted:
        number = number_property(backend, m.key or "", "s")
        agg = (
            percentile(backend, m.kind, number) if m.kind.startswith("p") else f"{m.kind}({number})"
        )
        values.append(f"{agg} AS r_{m.column}")
    named = ", ".join(
        f"{sql} AS {d.column}" for sql, d in zip(dims, rollup.dimensions, strict=True)
    )
    key_cols = [rollup.bucket, *(d.column for d in rollup.dimensions)]
    on = " AND ".join(f"{rollup.table}.{c} = x.{c}" for c in key_cols)
    touched = " AND ".join(f"t.{c} = r.{c}" for c in key_cols)
    sets = ", ".join(f"r_{m.column} = x.r_{m.column}" for m in recounted)
    end = "INTERVAL '1 " + rollup.grain + "'"
    lo_ts, hi_ts = _literal_start(rollup, lo), _literal_start(rollup, hi)
    cursor.execute(
        f"""UPDATE {rollup.table} SET {sets}
            FROM (SELECT r.* FROM (SELECT {b} AS {rollup.bucket}{", " + named if named else ""},
                                          {", ".join(values)}
                                   FROM ({source_sql(rollup.events)}) s
                                   WHERE s.recorded_at >= {lo_ts}
                                     AND s.recorded_at < {hi_ts} + {end}
                                   GROUP BY {", ".join([b, *dims])}) r
                  JOIN {rollup.table} t ON {touched} WHERE t.version = {int(version)}) x
            WHERE {on}"""
    )


def _literal_start(rollup: Rollup, value: object) -> str:
    if rollup.grain == "hour":
        return f"CAST('{value}' AS TIMESTAMPTZ)"
    return f"timezone('UTC', CAST(DATE '{value}' AS TIMESTAMP))"


# ---- rebuilds ---------------------------------------------------------------------------


def _bucket_ranges(cursor, rollup: Rollup, days: Sequence[dt.date]) -> list[tuple[str, str]]:
    """The time ranges of the buckets holding `days`, but for those with an expired day."""
    expired = retention.expired_days(cursor)
    ranges = {}
    for day in days:
        start, end = _bucket_of(rollup.grain, day)
        if any(start <= d < end for d in expired):
            continue
        if rollup.grain == "hour":
            for hour in range(24):
                at = dt.datetime.combine(day, dt.time(hour), dt.UTC)
                ranges[at] = at + dt.timedelta(hours=1)
        else:
            ranges[_ts(start)] = _ts(end)
    return [(ts_literal(lo), ts_literal(hi)) for lo, hi in sorted(ranges.items())]


def _bucket_of(grain: str, day: dt.date) -> tuple[dt.date, dt.date]:
    if grain in ("hour", "day"):
        return day, day + dt.timedelta(days=1)
    if grain == "week":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=7)
    start = day.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def _ts(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _rebuild_one(cursor, backend: str, rollup: Rollup, version: int, where: str) -> int:
    """Recount the rows of `where`'s buckets into a shadow, write those that differ
    (rebuilt_rows.py); how many differed."""
    recounted = [f"r_{m.column}" for m in rollup.measures if m.kind in RECOUNTED]
    kept = [*state_columns(rollup), *recounted]
    floats = frozenset(c for c in kept if c.startswith("p_sum_")) | frozenset(recounted)
    shadow = rebuilt_rows.Shadow.create(cursor, rollup)
    _fold_groups(cursor, backend, [[shadow.shadow]], version, Scope(None, where))
    in_scope = _rows_in(rollup, where)
    differed = rebuilt_rows.merge(cursor, shadow, kept, floats, in_scope, version)
    rebuilt_rows.merge_users(cursor, shadow, in_scope)
    shadow.drop(cursor)
    return differed


def _rows_in(rollup: Rollup, where: str) -> str:
    """The rows whose bucket starts in `where`'s ranges (each range is whole buckets)."""
    start = (
        rollup.bucket
        if rollup.grain == "hour"
        else f"timezone('UTC', CAST({rollup.bucket} AS TIMESTAMP))"
    )
    return where.replace("recorded_at", start)


# ---- active users ---------------------------------------------------------------------


def _add_user_days(cursor, events_sql: str) -> None:
    """Note the (day, user) pairs of `events_sql` not yet in tb_user_day, and add them."""
    cursor.execute(
        f"""CREATE TEMP TABLE fd_r_new_user_days AS
            SELECT DISTINCT CAST(timezone('UTC', e.recorded_at) AS DATE) AS day, e.user_id
            FROM ({events_sql}) e
            WHERE e.user_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM tb_user_day u
                WHERE u.day = CAST(timezone('UTC', e.recorded_at) AS DATE)
                  AND u.user_id = e.user_id)"""
    )
    cursor.execute(
        "INSERT INTO tb_user_day (day, user_id) SELECT day, user_id FROM fd_r_new_user_days"
    )


def _recount_active_users(cursor, rollup: Rollup, version: int, new_days: str) -> None:
    """Recount the days whose windows the new user-days fall in."""
    counts = {
        "dau": "(SELECT count(*) FROM tb_user_day u WHERE u.day = d.day)",
        "wau": "(SELECT count(DISTINCT u.user_id) FROM tb_user_day u "
        "WHERE u.day > d.day - 7 AND u.day <= d.day)",
        "mau": "(SELECT count(DISTINCT u.user_id) FROM tb_user_day u "
        "WHERE u.day > d.day - 30 AND u.day <= d.day)",
    }
    columns = [m.column for m in rollup.measures]
    values = ", ".join(f"{counts[m.kind]} AS {m.column}" for m in rollup.measures)
    update = ", ".join(f"{c} = excluded.{c}" for c in columns)
    cursor.execute(
        f"""INSERT INTO {rollup.table} (date, {", ".join(columns)}, version, computed_at)
            SELECT d.day, {values}, {int(version)}, CURRENT_TIMESTAMP
            FROM (SELECT DISTINCT u.day FROM tb_user_day u
                  JOIN (SELECT DISTINCT day FROM {new_days}) n
                    ON u.day >= n.day AND u.day < n.day + 30) d
            ON CONFLICT (date) DO UPDATE SET {update},
                version = excluded.version, computed_at = excluded.computed_at"""
    )


def _rebuild_active_users(
    cursor, rollup: Rollup, version: int, where: str, days: Sequence[dt.date]
) -> int:
    listed = ", ".join(f"DATE '{d.isoformat()}'" for d in days)
    cursor.execute(
        f"""CREATE TEMP TABLE fd_r_user_days AS
            SELECT DISTINCT CAST(timezone('UTC', recorded_at) AS DATE) AS day, user_id
            FROM ({source_sql(rollup.events)}) s WHERE user_id IS NOT NULL AND ({where})"""
    )
    # Only the user-days that differ are written: a repair that finds nothing wrong
    # rewrites nothing.
    rebuilt_rows.sync_rows(
        cursor, "tb_user_day", "fd_r_user_days", f"day IN ({listed})", ["day", "user_id"]
    )
    cursor.execute(
        "CREATE TEMP TABLE fd_r_new_user_days AS "
        f"SELECT day FROM tb_user_day WHERE day IN ({listed})"
    )
    shadow = rebuilt_rows.Shadow.create(cursor, rollup)
    _recount_active_users(cursor, shadow.shadow, version, "fd_r_new_user_days")
    kept = [m.column for m in rollup.measures]
    in_scope = f"date IN (SELECT date FROM {shadow.shadow.table})"
    differed = rebuilt_rows.merge(cursor, shadow, kept, frozenset(), in_scope, version)
    shadow.drop(cursor)
    _drop(cursor, "fd_r_user_days", "fd_r_new_user_days")
    return differed


# ---- small helpers ----------------------------------------------------------------------


def _us(interval: str) -> str:
    return f"CAST(ROUND(EXTRACT(EPOCH FROM {interval}) * 1000000) AS BIGINT)"


def _rows(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return cursor.fetchall()


def _drop(cursor, *tables: str) -> None:
    for table in tables:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
