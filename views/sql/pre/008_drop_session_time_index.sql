-- PostgreSQL: aggregates now follow sessions through tb_session_day, so nothing
-- reads events by (session_id, recorded_at) any more; the index only slowed appends.
DROP INDEX IF EXISTS ix_pageview_event_session_time;
