-- Hourly metrics per page; `hour` is the start of the UTC hour.
-- `version` is the ingest commit that last changed the row (see va_pageview_aggregate).
SELECT page_url, hour, view_count, unique_visitors, version
FROM tb_pageview_hourly
