"""Keep the daily and hourly aggregates exact, in the ingest transaction.

Only rows an ingest can change are recomputed, from raw events, in SQL:
- daily (page, day): every page that any session with a new event on that day
  viewed that day (a new event can end a bounce or lengthen a session on
  another page), plus the new events' own pages;
- hourly (page, hour): the new events' own page-hours.
A row is rewritten only when a metric changes, so `version` marks real changes
and live subscribers get no empty deltas. (Averages are compared to a
microsecond: summing the same spans in another order may differ in the last bit.)
Both dialects run the same statements; `timezone('UTC', …)` pins days and
hours to UTC whatever the session's time zone.
"""

from __future__ import annotations

from .scalar import scalar

__all__ = ["changed", "in_day", "recompute", "remove_orphans"]

_DAY_START = "timezone('UTC', CAST({day} AS TIMESTAMP))"
_DAY_END = "timezone('UTC', CAST({day} AS TIMESTAMP) + INTERVAL '1 day')"


def in_day(ts: str, day: str) -> str:
    return f"{ts} >= {_DAY_START.format(day=day)} AND {ts} < {_DAY_END.format(day=day)}"


_STATEMENTS = [
    # Session-days touched by the new events.
    """CREATE TEMP TABLE flightdeck_touched AS
       SELECT DISTINCT session_id, CAST(timezone('UTC', recorded_at) AS DATE) AS day
       FROM flightdeck_new""",
    # Daily keys to recompute: every page those sessions viewed those days.
    f"""CREATE TEMP TABLE flightdeck_daily_keys AS
       SELECT DISTINCT e.page_url, t.day
       FROM flightdeck_touched t JOIN tb_pageview_event e
         ON e.session_id = t.session_id AND {in_day("e.recorded_at", "t.day")}""",
    # Every view of those page-days.
    f"""CREATE TEMP TABLE flightdeck_views AS
       SELECT k.page_url, k.day, e.session_id
       FROM flightdeck_daily_keys k JOIN tb_pageview_event e
         ON e.page_url = k.page_url AND {in_day("e.recorded_at", "k.day")}""",
    # The whole day of each session seen on those pages: views and span.
    f"""CREATE TEMP TABLE flightdeck_sessions AS
       SELECT s.session_id, s.day, count(*) AS n,
              EXTRACT(EPOCH FROM max(e.recorded_at) - min(e.recorded_at)) AS span_s
       FROM (SELECT DISTINCT session_id, day FROM flightdeck_views) s
       JOIN tb_pageview_event e
         ON e.session_id = s.session_id AND {in_day("e.recorded_at", "s.day")}
       GROUP BY s.session_id, s.day""",
    """INSERT INTO tb_pageview_aggregate (page_url, date, view_count, unique_visitors,
           bounce_rate, avg_session_duration, computed_at, version)
       SELECT v.page_url, v.day, v.view_count, u.visitors,
              CAST(ROUND(CAST(100.0 * u.bounced / u.visitors AS NUMERIC(20, 10)), 2)
                   AS DOUBLE PRECISION),
              CAST(u.avg_span AS DOUBLE PRECISION), CURRENT_TIMESTAMP, {version}
       FROM (SELECT page_url, day, count(*) AS view_count FROM flightdeck_views
             GROUP BY page_url, day) v
       JOIN (SELECT p.page_url, p.day, count(*) AS visitors,
                    sum(CASE WHEN s.n = 1 THEN 1 ELSE 0 END) AS bounced, avg(s.span_s) AS avg_span
             FROM (SELECT DISTINCT page_url, day, session_id FROM flightdeck_views) p
             JOIN flightdeck_sessions s ON s.session_id = p.session_id AND s.day = p.day
             GROUP BY p.page_url, p.day) u
         ON u.page_url = v.page_url AND u.day = v.day
       ON CONFLICT (page_url, date) DO UPDATE SET
           view_count = excluded.view_count, unique_visitors = excluded.unique_visitors,
           bounce_rate = excluded.bounce_rate,
           avg_session_duration = excluded.avg_session_duration,
           computed_at = excluded.computed_at, version = excluded.version
       WHERE tb_pageview_aggregate.view_count <> excluded.view_count
          OR tb_pageview_aggregate.unique_visitors <> excluded.unique_visitors
          OR tb_pageview_aggregate.bounce_rate <> excluded.bounce_rate
          OR abs(tb_pageview_aggregate.avg_session_duration
                 - excluded.avg_session_duration) > 1e-6""",
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

_CLEANUP = [
    "flightdeck_touched",
    "flightdeck_daily_keys",
    "flightdeck_views",
    "flightdeck_sessions",
]


def recompute(cursor, version: int) -> None:
    """Recompute the aggregates touched by the rows in temp table `flightdeck_new`.

    Only its session_id, page_url and recorded_at are read, so a repair can fill
    it with every event of the days it recomputes.
    """
    for statement in _STATEMENTS:
        cursor.execute(statement.replace("{version}", str(int(version))))
    for table in _CLEANUP:
        cursor.execute(f"DROP TABLE {table}")


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
