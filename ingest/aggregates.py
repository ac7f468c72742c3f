"""Keep the daily and hourly aggregates exact, in the ingest transaction.

Daily and hourly metrics are kept incrementally, so a commit costs what it
touches, not the size of the day. Per UTC day we hold each session's views,
first/last view and the page-hours it viewed (`tb_session_day`, one row per
session-day; `pages` lists 'HH page_url'); each daily row keeps exact integer
sums (`bounced`, `span_us_sum`) next to the published metrics. A commit reads
its session-days' old rows once, by key, and then (`prepare`, under the
fold's session locks, beside other folds):
- writes the session-days back with their merged page-hour lists;
then (`apply`, in the writer's turn):
- adds its views to the page-days and page-hours they fall on;
- per page-day, adds each session now on the page with its new bounce and
  duration and takes back each session that was on it with its old ones (so a
  second view on page B ends a bounce on page A);
- per page-hour, counts the sessions new to it as visitors.
Only a repair (`rebuild`) recounts hours from raw events.

A row is rewritten only when a metric changes, so `version` marks real changes.
Both dialects run the same statements; `timezone('UTC', …)` pins days and
hours to UTC whatever the session's time zone.
"""

from __future__ import annotations

from flightdeck.views.live_views import LIVE_KEYS

from .live_removals import record_removals
from .rebuilt_rows import sync_rows
from .scalar import scalar

__all__ = ["apply", "changed", "day_of", "in_day", "prepare", "rebuild", "remove_orphans"]

_DAY_START = "timezone('UTC', CAST({day} AS TIMESTAMP))"
_DAY_END = "timezone('UTC', CAST({day} AS TIMESTAMP) + INTERVAL '1 day')"


def day_of(ts: str) -> str:
    """The UTC date of timestamp expression `ts`, whatever the session's time zone."""
    return f"CAST(timezone('UTC', {ts}) AS DATE)"


def in_day(ts: str, day: str) -> str:
    return f"{ts} >= {_DAY_START.format(day=day)} AND {ts} < {_DAY_END.format(day=day)}"


def _span_us(alias: str) -> str:
    return (
        f"CAST(ROUND(EXTRACT(EPOCH FROM {alias}.last_at - {alias}.first_at) * 1000000) AS BIGINT)"
    )


def _bounced(alias: str) -> str:
    return f"CASE WHEN {alias}.views = 1 THEN 1 ELSE 0 END"


def _rate(bounced: str, visitors: str) -> str:
    """bounce_rate: percent, 2 decimals, rounded half away from zero (exact NUMERIC first)."""
    return (
        f"CAST(ROUND(CAST(100.0 * ({bounced}) / ({visitors}) AS NUMERIC(20, 10)), 2) "
        "AS DOUBLE PRECISION)"
    )


def _avg(span_us: str, visitors: str) -> str:
    """avg_session_duration in seconds, from the exact sum of microseconds."""
    return f"CAST({span_us} AS DOUBLE PRECISION) / ({visitors}) / 1000000.0"


def _metrics(bounced: str, visitors: str, span_us: str) -> str:
    return f"{_rate(bounced, visitors)}, {_avg(span_us, visitors)}"


# A delta row with no new visitors only ever updates an existing row, but its
# insert values are still evaluated: keep them finite (a new row has visitors).
_first_metrics = (
    f"COALESCE({_rate('bounced', 'NULLIF(visitors, 0)')}, 0), "
    f"COALESCE({_avg('span_us', 'NULLIF(visitors, 0)')}, 0)"
)

_OLD_AND_NEW = {
    name: f"tb_pageview_aggregate.{name} + excluded.{name}"
    for name in ("bounced", "unique_visitors", "span_us_sum")
}


_NEW_DAY = day_of("recorded_at")
# A page-hour of a session-day, as text: two-digit UTC hour, a space, the page.
_PAGE_HOUR = (
    "lpad(CAST(CAST(EXTRACT(HOUR FROM timezone('UTC', recorded_at)) AS INTEGER) AS TEXT), 2, '0')"
    " || ' ' || page_url"
)
_PAGE = "substr(ph, 4)"  # the page of page-hour `ph`
_HOUR = (  # the UTC hour of page-hour `ph` of day `day`
    "timezone('UTC', CAST(day AS TIMESTAMP)"
    " + CAST(substr(ph, 1, 2) AS INTEGER) * INTERVAL '1 hour')"
)

_SESSIONS = [
    # Under the fold's session locks (session_locks.py): only its sessions' rows.
    # Each session-day the commit touches, before (old_*, NULL if new) and after.
    f"""CREATE TEMP TABLE fd_session AS
       SELECT session_id, day, old_pages, bounced_old, span_old,
              {_bounced("n")} AS bounced_new, {_span_us("n")} AS span_new,
              views, first_at, last_at
       FROM (SELECT d.session_id, d.day, o.pages AS old_pages,
                    COALESCE({_bounced("o")}, 0) AS bounced_old,
                    COALESCE({_span_us("o")}, 0) AS span_old,
                    d.views + COALESCE(o.views, 0) AS views,
                    CASE WHEN o.first_at < d.first_at THEN o.first_at ELSE d.first_at END
                        AS first_at,
                    CASE WHEN o.last_at > d.last_at THEN o.last_at ELSE d.last_at END AS last_at
             FROM (SELECT session_id, {_NEW_DAY} AS day, count(*) AS views,
                          min(recorded_at) AS first_at, max(recorded_at) AS last_at
                   FROM flightdeck_new GROUP BY session_id, {_NEW_DAY}) d
             LEFT JOIN tb_session_day o ON o.session_id = d.session_id AND o.day = d.day) n""",
    # The page-hours of those session-days: seen before this commit (`old`), and
    # the commit's views of each (0: not viewed again).
    f"""CREATE TEMP TABLE fd_keys AS
       SELECT session_id, day, ph, bool_or(old) AS old, sum(views) AS views
       FROM (SELECT session_id, day, ph, TRUE AS old, 0 AS views
             FROM (SELECT session_id, day, unnest(old_pages) AS ph FROM fd_session) o
             UNION ALL
             SELECT session_id, {_NEW_DAY}, {_PAGE_HOUR}, FALSE, count(*)
             FROM flightdeck_new GROUP BY session_id, {_NEW_DAY}, {_PAGE_HOUR}) k
       GROUP BY session_id, day, ph""",
    # The session-days after this commit, with all their page-hours.
    """INSERT INTO tb_session_day (session_id, day, views, first_at, last_at, pages)
       SELECT s.session_id, s.day, s.views, s.first_at, s.last_at, k.pages
       FROM fd_session s
       JOIN (SELECT session_id, day, array_agg(ph ORDER BY ph) AS pages FROM fd_keys
             GROUP BY session_id, day) k ON k.session_id = s.session_id AND k.day = s.day
       ON CONFLICT (session_id, day) DO UPDATE SET
           views = excluded.views, first_at = excluded.first_at, last_at = excluded.last_at,
           pages = excluded.pages""",
]

_SHARED = [
    # In the writer's turn: rows that many sessions add to.
    # Per page-day: the new views; each session counted on the page after this
    # commit adds its new stats, each counted before takes back its old ones
    # (a second view on page B ends a bounce on page A).
    f"""INSERT INTO tb_pageview_aggregate (page_url, date, view_count, unique_visitors, bounced,
           span_us_sum, bounce_rate, avg_session_duration, computed_at, version)
       SELECT page_url, day, views, visitors, bounced, span_us,
              {_first_metrics}, CURRENT_TIMESTAMP, {{version}}
       FROM (SELECT p.page_url, p.day, sum(p.views) AS views,
                    sum(CASE WHEN p.old THEN 0 ELSE 1 END) AS visitors,
                    sum(s.bounced_new - CASE WHEN p.old THEN s.bounced_old ELSE 0 END) AS bounced,
                    sum(s.span_new - CASE WHEN p.old THEN s.span_old ELSE 0 END) AS span_us
             FROM (SELECT session_id, day, {_PAGE} AS page_url, bool_or(old) AS old,
                          sum(views) AS views
                   FROM fd_keys GROUP BY session_id, day, {_PAGE}) p
             JOIN fd_session s ON s.session_id = p.session_id AND s.day = p.day
             GROUP BY p.page_url, p.day) delta
       ON CONFLICT (page_url, date) DO UPDATE SET
           view_count = tb_pageview_aggregate.view_count + excluded.view_count,
           unique_visitors = tb_pageview_aggregate.unique_visitors + excluded.unique_visitors,
           bounced = tb_pageview_aggregate.bounced + excluded.bounced,
           span_us_sum = tb_pageview_aggregate.span_us_sum + excluded.span_us_sum,
           bounce_rate = {_rate(_OLD_AND_NEW["bounced"], _OLD_AND_NEW["unique_visitors"])},
           avg_session_duration = {
        _avg(_OLD_AND_NEW["span_us_sum"], _OLD_AND_NEW["unique_visitors"])
    },
           computed_at = excluded.computed_at, version = excluded.version
       WHERE excluded.view_count <> 0 OR excluded.unique_visitors <> 0
          OR excluded.bounced <> 0 OR excluded.span_us_sum <> 0""",
    # Per page-hour: the new views, and the sessions new to it. Every row gains views.
    f"""INSERT INTO tb_pageview_hourly (page_url, hour, view_count, unique_visitors,
           computed_at, version)
       SELECT {_PAGE}, {_HOUR}, sum(views), sum(CASE WHEN old THEN 0 ELSE 1 END),
              CURRENT_TIMESTAMP, {{version}}
       FROM fd_keys WHERE views > 0
       GROUP BY {_PAGE}, {_HOUR}
       ON CONFLICT (page_url, hour) DO UPDATE SET
           view_count = tb_pageview_hourly.view_count + excluded.view_count,
           unique_visitors = tb_pageview_hourly.unique_visitors + excluded.unique_visitors,
           computed_at = excluded.computed_at, version = excluded.version""",
]

# A repair recounts page-hours from raw events.
_HOURLY_FROM_EVENTS = """INSERT INTO tb_pageview_hourly (page_url, hour, view_count,
           unique_visitors, computed_at, version)
       SELECT e.page_url, k.hour, count(*), count(DISTINCT e.session_id), CURRENT_TIMESTAMP,
              {version}
       FROM (SELECT DISTINCT page_url,
                    timezone('UTC', date_trunc('hour', timezone('UTC', recorded_at))) AS hour
             FROM flightdeck_new) k
       JOIN tb_pageview_event e ON e.page_url = k.page_url
         AND e.recorded_at >= k.hour AND e.recorded_at < k.hour + INTERVAL '1 hour'
       GROUP BY e.page_url, k.hour
       ON CONFLICT (page_url, hour) DO UPDATE SET
           view_count = excluded.view_count, unique_visitors = excluded.unique_visitors,
           computed_at = excluded.computed_at, version = excluded.version
       WHERE tb_pageview_hourly.view_count <> excluded.view_count
          OR tb_pageview_hourly.unique_visitors <> excluded.unique_visitors"""

_TEMP = ("fd_session", "fd_keys")


def prepare(cursor) -> None:
    """Fold the sessions of the events in temp table `flightdeck_new` (appended, and
    their sessions locked): their session-days, and the page-hours each adds.

    Only its session_id, page_url and recorded_at are read. Only the first
    statement joins a stored table (tb_session_day, by its key); the rest read
    the two small temp tables, so they need no statistics (no ANALYZE).
    """
    for statement in _SESSIONS:
        cursor.execute(statement)


def apply(cursor, version: int) -> None:
    """After `prepare`, in the writer's turn: add what the sessions changed to the
    daily and hourly rows, stamped with `version`."""
    for statement in _SHARED:
        cursor.execute(statement.replace("{version}", str(int(version))))
    for table in _TEMP:
        cursor.execute(f"DROP TABLE {table}")


def rebuild(cursor, days: list[str], version: int, backend: str) -> None:
    """Recompute `days` (SQL date literals) from raw events alone: state, daily and hourly rows.

    A repair: the incremental state of those days is thrown away and rebuilt,
    then every daily row is set from it, rewriting only rows that differ.
    """
    if not days:
        return
    listed = ", ".join(days)
    raw_day = day_of("recorded_at")
    in_scope = " OR ".join(in_day("recorded_at", d) for d in days)
    _rebuild_sessions(cursor, listed, in_scope)
    cursor.execute(
        f"""INSERT INTO tb_pageview_aggregate (page_url, date, view_count, unique_visitors,
                bounced, span_us_sum, bounce_rate, avg_session_duration, computed_at, version)
            SELECT v.page_url, v.day, v.views, u.visitors, u.bounced, u.span_us,
                   {_metrics("u.bounced", "u.visitors", "u.span_us")}, CURRENT_TIMESTAMP,
                   {int(version)}
            FROM (SELECT page_url, {raw_day} AS day, count(*) AS views FROM tb_pageview_event
                  WHERE {in_scope} GROUP BY page_url, {raw_day}) v
            JOIN (SELECT p.page_url, p.day, count(*) AS visitors,
                         sum({_bounced("s")}) AS bounced, sum({_span_us("s")}) AS span_us
                  FROM (SELECT DISTINCT session_id, day, {_PAGE} AS page_url
                        FROM (SELECT session_id, day, unnest(pages) AS ph FROM tb_session_day
                              WHERE day IN ({listed})) k) p
                  JOIN tb_session_day s ON s.session_id = p.session_id AND s.day = p.day
                  GROUP BY p.page_url, p.day) u ON u.page_url = v.page_url AND u.day = v.day
            ON CONFLICT (page_url, date) DO UPDATE SET
                view_count = excluded.view_count, unique_visitors = excluded.unique_visitors,
                bounced = excluded.bounced, span_us_sum = excluded.span_us_sum,
                bounce_rate = excluded.bounce_rate,
                avg_session_duration = excluded.avg_session_duration,
                computed_at = excluded.computed_at, version = excluded.version
            WHERE tb_pageview_aggregate.view_count <> excluded.view_count
               OR tb_pageview_aggregate.unique_visitors <> excluded.unique_visitors
               OR tb_pageview_aggregate.bounced <> excluded.bounced
               OR tb_pageview_aggregate.span_us_sum <> excluded.span_us_sum
               OR tb_pageview_aggregate.bounce_rate <> excluded.bounce_rate
               OR abs(tb_pageview_aggregate.avg_session_duration
                      - excluded.avg_session_duration) > 1e-6"""
    )
    cursor.execute(
        f"CREATE TEMP TABLE flightdeck_new AS SELECT session_id, page_url, recorded_at "
        f"FROM tb_pageview_event WHERE {in_scope}"
    )
    cursor.execute(_HOURLY_FROM_EVENTS.replace("{version}", str(int(version))))
    cursor.execute("DROP TABLE flightdeck_new")


def _rebuild_sessions(cursor, listed: str, in_scope: str) -> None:
    """Set the session-days of days `listed` from raw events, writing only those that
    differ: a repair that finds nothing wrong rewrites nothing (on DuckDB a rewrite of
    every session-day made the commit of each `reaggregate --all` grow with the store)."""
    raw_day = day_of("recorded_at")
    cursor.execute(
        f"""CREATE TEMP TABLE fd_session_fresh AS
            SELECT session_id, {raw_day} AS day, count(*) AS views, min(recorded_at) AS first_at,
                   max(recorded_at) AS last_at,
                   array_agg(DISTINCT {_PAGE_HOUR} ORDER BY {_PAGE_HOUR}) AS pages
            FROM tb_pageview_event WHERE {in_scope} GROUP BY session_id, {raw_day}"""
    )
    key, values = ["session_id", "day"], ["views", "first_at", "last_at", "pages"]
    sync_rows(cursor, "tb_session_day", "fd_session_fresh", f"day IN ({listed})", key, values)
    cursor.execute("DROP TABLE fd_session_fresh")


def remove_orphans(cursor, days: list[str], version: int) -> int:
    """Delete aggregate rows of `days` (SQL date literals) that no event supports,
    noting them as removed by `version` for live subscribers.

    Only a repair needs this: ingest never removes events, so it never empties a row.
    """
    if not days:
        return 0
    listed = ", ".join(days)
    removed = 0
    for view, table, where in (
        (
            "va_pageview_aggregate",
            "tb_pageview_aggregate",
            f"a.date IN ({listed}) AND NOT EXISTS (SELECT 1 FROM tb_pageview_event e "
            f"WHERE e.page_url = a.page_url AND {in_day('e.recorded_at', 'a.date')})",
        ),
        (
            "va_pageview_hourly",
            "tb_pageview_hourly",
            f"CAST(timezone('UTC', a.hour) AS DATE) IN ({listed}) AND NOT EXISTS ("
            "SELECT 1 FROM tb_pageview_event e WHERE e.page_url = a.page_url "
            "AND e.recorded_at >= a.hour AND e.recorded_at < a.hour + INTERVAL '1 hour')",
        ),
    ):
        removed += scalar(cursor, f"SELECT count(*) FROM {table} a WHERE {where}")
        record_removals(cursor, view, f"{table} a", LIVE_KEYS[view], where, version)
        cursor.execute(f"DELETE FROM {table} a WHERE {where}")
    return removed


def changed(cursor, version: int) -> tuple[int, int]:
    """How many daily and hourly rows `version` wrote."""
    return tuple(
        scalar(cursor, f"SELECT count(*) FROM {table} WHERE version = {int(version)}")
        for table in ("tb_pageview_aggregate", "tb_pageview_hourly")
    )
