-- Hourly metrics per page; `hour` is the start of the UTC hour.
SELECT page_url, hour, view_count, unique_visitors
FROM tb_pageview_hourly
