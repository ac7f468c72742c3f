"""Keep the daily and hourly aggregates exact, in the ingest transaction.

Daily metrics are kept incrementally, so a commit costs what it touches, not
the size of the day. Per UTC day we hold each session's views and first/last
view (`tb_session_day`) and which sessions viewed which page
(`tb_page_session_day`); each daily row keeps exact integer sums (`bounced`,
`span_us_sum`) next to the published metrics. A commit then:
- adds its views to the page-days they fall on;
- counts a session new to a page-day as a visitor, with the session's stats;
- for every page-day a touched session already counted in (on any page, so a
  second view on page B ends a bounce on page A), swaps the session's old
  bounce and duration for its new ones.
Hourly rows (views and distinct sessions of one page-hour) are recomputed
from raw events, which is cheap: an hour is small.

A row is rewritten only when a metric changes, so `version` marks real changes.
Both dialects run the same statements; `timezone('UTC', …)` pins days and
hours to UTC whatever the session's time zone.
"""

from __future__ import annotations

import re

from .scalar import scalar

__all__ = ["changed", "day_of", "in_day", "rebuild", "recompute", "remove_orphans"]

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

_INCREMENT = [
    # What the new events add per page-day-session and per session-day.
    f"""CREATE TEMP TABLE fd_pair_delta AS
       SELECT page_url, {_NEW_DAY} AS day, session_id, count(*) AS views
       FROM flightdeck_new GROUP BY page_url, {_NEW_DAY}, session_id""",
    f"""CREATE TEMP TABLE fd_session_delta AS
       SELECT session_id, {_NEW_DAY} AS day, count(*) AS views,
              min(recorded_at) AS first_at, max(recorded_at) AS last_at
       FROM flightdeck_new GROUP BY session_id, {_NEW_DAY}""",
    # Those sessions before this commit (no row: the session-day is new).
    """CREATE TEMP TABLE fd_session_old AS
       SELECT s.session_id, s.day, s.views, s.first_at, s.last_at
       FROM tb_session_day s
       JOIN fd_session_delta d ON d.session_id = s.session_id AND d.day = s.day""",
    """INSERT INTO tb_session_day (session_id, day, views, first_at, last_at)
       SELECT session_id, day, views, first_at, last_at FROM fd_session_delta
       ON CONFLICT (session_id, day) DO UPDATE SET
           views = tb_session_day.views + excluded.views,
           first_at = least(tb_session_day.first_at, excluded.first_at),
           last_at = greatest(tb_session_day.last_at, excluded.last_at)""",
    # Each touched session's bounce and duration, before and after.
    f"""CREATE TEMP TABLE fd_session_change AS
       SELECT s.session_id, s.day, o.session_id IS NOT NULL AS existed,
              {_bounced("s")} AS bounced_new, COALESCE({_bounced("o")}, 0) AS bounced_old,
              {_span_us("s")} AS span_new, COALESCE({_span_us("o")}, 0) AS span_old
       FROM tb_session_day s
       JOIN fd_session_delta d ON d.session_id = s.session_id AND d.day = s.day
       LEFT JOIN fd_session_old o ON o.session_id = s.session_id AND o.day = s.day""",
    # Per page-day: new views; new visitors with their sessions' stats; and for
    # visitors already counted, the change in their sessions' stats. A session-day
    # new in this commit has no page rows yet (both tables gain and lose a
    # session-day together), so only sessions that existed are looked up in
    # tb_page_session_day: a commit then reads what it touches, not the table.
    """CREATE TEMP TABLE fd_daily_delta AS
       SELECT page_url, day, sum(views) AS views, sum(visitors) AS visitors,
              sum(bounced) AS bounced, sum(span_us) AS span_us
       FROM (
           SELECT page_url, day, views, 0 AS visitors, 0 AS bounced, 0 AS span_us
           FROM fd_pair_delta
           UNION ALL
           SELECT d.page_url, d.day, 0, 1, c.bounced_new, c.span_new
           FROM fd_pair_delta d
           JOIN fd_session_change c ON c.session_id = d.session_id AND c.day = d.day
           WHERE NOT c.existed
           UNION ALL
           SELECT d.page_url, d.day, 0, 1, c.bounced_new, c.span_new
           FROM fd_pair_delta d
           JOIN fd_session_change c ON c.session_id = d.session_id AND c.day = d.day
           WHERE c.existed AND NOT EXISTS (
               SELECT 1 FROM tb_page_session_day p WHERE p.page_url = d.page_url
               AND p.day = d.day AND p.session_id = d.session_id)
           UNION ALL
           SELECT p.page_url, p.day, 0, 0, c.bounced_new - c.bounced_old, c.span_new - c.span_old
           FROM tb_page_session_day p
           JOIN fd_session_change c ON c.session_id = p.session_id AND c.day = p.day
           WHERE c.existed
       ) parts
       GROUP BY page_url, day""",
    """INSERT INTO tb_page_session_day (page_url, day, session_id, views)
       SELECT page_url, day, session_id, views FROM fd_pair_delta
       ON CONFLICT (page_url, day, session_id) DO UPDATE SET
           views = tb_page_session_day.views + excluded.views""",
    f"""INSERT INTO tb_pageview_aggregate (page_url, date, view_count, unique_visitors, bounced,
           span_us_sum, bounce_rate, avg_session_duration, computed_at, version)
       SELECT page_url, day, views, visitors, bounced, span_us,
              {_first_metrics}, CURRENT_TIMESTAMP, {{version}}
       FROM fd_daily_delta
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
    # Hourly: recompute the new events' page-hours from raw events.
    """INSERT INTO tb_pageview_hourly (page_url, hour, view_count, unique_visitors,
           computed_at, version)
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
          OR tb_pageview_hourly.unique_visitors <> excluded.unique_visitors""",
]

_CREATED = re.compile(r"\s*CREATE TEMP TABLE (\w+)")


def recompute(cursor, version: int, backend: str) -> None:
    """Fold the events in temp table `flightdeck_new` (already appended) into the aggregates.

    Only its session_id, page_url and recorded_at are read.
    """
    created = []
    for statement in _INCREMENT:
        cursor.execute(statement.replace("{version}", str(int(version))))
        if match := _CREATED.match(statement):
            created.append(match.group(1))
            if backend == "postgresql":
                # autovacuum never sees temp tables: without statistics the
                # planner guesses their size and may loop over big tables.
                cursor.execute(f"ANALYZE {match.group(1)}")
    for table in created:
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
    for table in ("tb_session_day", "tb_page_session_day"):
        cursor.execute(f"DELETE FROM {table} WHERE day IN ({listed})")
    cursor.execute(
        f"""INSERT INTO tb_session_day (session_id, day, views, first_at, last_at)
            SELECT session_id, {raw_day}, count(*), min(recorded_at), max(recorded_at)
            FROM tb_pageview_event WHERE {in_scope} GROUP BY session_id, {raw_day}"""
    )
    cursor.execute(
        f"""INSERT INTO tb_page_session_day (page_url, day, session_id, views)
            SELECT page_url, {raw_day}, session_id, count(*)
            FROM tb_pageview_event WHERE {in_scope} GROUP BY page_url, {raw_day}, session_id"""
    )
    cursor.execute(
        f"""INSERT INTO tb_pageview_aggregate (page_url, date, view_count, unique_visitors,
                bounced, span_us_sum, bounce_rate, avg_session_duration, computed_at, version)
            SELECT page_url, day, views, visitors, bounced, span_us,
                   {_metrics("bounced", "visitors", "span_us")}, CURRENT_TIMESTAMP, {int(version)}
            FROM (SELECT p.page_url, p.day, sum(p.views) AS views, count(*) AS visitors,
                         sum({_bounced("s")}) AS bounced, sum({_span_us("s")}) AS span_us
                  FROM tb_page_session_day p
                  JOIN tb_session_day s ON s.session_id = p.session_id AND s.day = p.day
                  WHERE p.day IN ({listed})
                  GROUP BY p.page_url, p.day) fresh
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
    cursor.execute(_INCREMENT[-1].replace("{version}", str(int(version))))  # hourly
    cursor.execute("DROP TABLE flightdeck_new")


def remove_orphans(cursor, days: list[str]) -> int:
    """Delete aggregate rows of `days` (SQL date literals) that no event supports.

    Only a repair needs this: ingest never removes events, so it never empties a row.
    """
    if not days:
        return 0
    listed = ", ".join(days)
    removed = 0
    for table, where in (
        (
            "tb_pageview_aggregate",
            f"a.date IN ({listed}) AND NOT EXISTS (SELECT 1 FROM tb_pageview_event e "
            f"WHERE e.page_url = a.page_url AND {in_day('e.recorded_at', 'a.date')})",
        ),
        (
            "tb_pageview_hourly",
            f"CAST(timezone('UTC', a.hour) AS DATE) IN ({listed}) AND NOT EXISTS ("
            "SELECT 1 FROM tb_pageview_event e WHERE e.page_url = a.page_url "
            "AND e.recorded_at >= a.hour AND e.recorded_at < a.hour + INTERVAL '1 hour')",
        ),
    ):
        removed += scalar(cursor, f"SELECT count(*) FROM {table} a WHERE {where}")
        cursor.execute(f"DELETE FROM {table} a WHERE {where}")
    return removed


def changed(cursor, version: int) -> tuple[int, int]:
    """How many daily and hourly rows `version` wrote."""
    return tuple(
        scalar(cursor, f"SELECT count(*) FROM {table} WHERE version = {int(version)}")
        for table in ("tb_pageview_aggregate", "tb_pageview_hourly")
    )
