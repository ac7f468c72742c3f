-- Daily metrics per page (UTC dates); definitions in DESIGN.md section 4.
SELECT page_url, date, view_count, unique_visitors, bounce_rate,
       avg_session_duration, computed_at
FROM tb_pageview_aggregate
