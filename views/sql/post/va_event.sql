-- Raw events of every type: page views (tb_pageview_event) and the rest (tb_event).
SELECT event_id, 'pageview' AS event_type, session_id, user_id, page_url, recorded_at,
       referrer, user_agent, duration_s, CAST(properties AS TEXT) AS properties, ingested_at
FROM tb_pageview_event
UNION ALL
SELECT event_id, event_type, session_id, user_id, page_url, recorded_at,
       referrer, user_agent, duration_s, CAST(properties AS TEXT) AS properties, ingested_at
FROM tb_event
