-- PostgreSQL: the ingest path recomputes aggregates per (session, day) and
-- (page, day); retention deletes by time. These indexes keep each of those a
-- range scan instead of a full scan of the events table.
CREATE INDEX IF NOT EXISTS ix_pageview_event_session_time
    ON tb_pageview_event (session_id, recorded_at);
CREATE INDEX IF NOT EXISTS ix_pageview_event_page_time
    ON tb_pageview_event (page_url, recorded_at);
CREATE INDEX IF NOT EXISTS ix_pageview_event_recorded_at
    ON tb_pageview_event (recorded_at);
CREATE INDEX IF NOT EXISTS ix_pageview_aggregate_date
    ON tb_pageview_aggregate (date);
