-- Daily metrics per page (UTC dates); definitions in docs/metrics.md.
-- `version` is the ingest commit that last changed the row: it only grows, so
-- "WHERE version > v" reads what changed since a client last looked.
SELECT page_url, date, view_count, unique_visitors, bounce_rate,
       avg_session_duration, computed_at, version
FROM tb_pageview_aggregate
