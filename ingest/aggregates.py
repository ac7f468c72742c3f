"""Keep the daily and hourly aggregates exact, in the ingest transaction.

Only rows an ingest can change are recomputed, from raw events, in SQL:
- daily (page, day): every page that any session with a new event on that day
  viewed that day (a new event can end a bounce or lengthen a session on
  another page), plus the new events' own pages;
- hourly (page, hour): the new events' own page-hours.
Both dialects run the same statements; `timezone('UTC', …)` pins days and
hours to UTC whatever the session's time zone.
"""

from __future__ import annotations

__all__ = ["recompute"]

_DAY_START = "timezone('UTC', CAST({day} AS TIMESTAMP))"
_DAY_END = "timezone('UTC', CAST({day} AS TIMESTAMP) + INTERVAL '1 day')"


def _in_day(ts: str, day: str) -> str:
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
         ON e.session_id = t.session_id AND {_in_day("e.recorded_at", "t.day")}""",
    # Every view of those page-days.
    f"""CREATE TEMP TABLE flightdeck_views AS
       SELECT k.page_url, k.day, e.session_id
       FROM flightdeck_daily_keys k JOIN tb_pageview_event e
         ON e.page_url = k.page_url AND {_in_day("e.recorded_at", "k.day")}""",
    # The whole day of each session seen on those pages: views and span.
    f"""CREATE TEMP TABLE flightdeck_sessions AS
       SELECT s.session_id, s.day, count(*) AS n,
              EXTRACT(EPOCH FROM max(e.recorded_at) - min(e.recorded_at)) AS span_s
       FROM (SELECT DISTINCT session_id, day FROM flightdeck_views) s
       JOIN tb_pageview_event e
         ON e.session_id = s.session_id AND {_in_day("e.recorded_at", "s.day")}
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
           computed_at = excluded.computed_at, version = excluded.version""",
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
           computed_at = excluded.computed_at, version = excluded.version""",
]

_CLEANUP = [
    "flightdeck_touched",
    "flightdeck_daily_keys",
    "flightdeck_views",
    "flightdeck_sessions",
]


def recompute(cursor, version: int) -> None:
    """Recompute the aggregates touched by the rows in temp table `flightdeck_new`."""
    for statement in _STATEMENTS:
        cursor.execute(statement.replace("{version}", str(int(version))))
    for table in _CLEANUP:
        cursor.execute(f"DROP TABLE {table}")
