-- Raw events for columnar export; properties as JSON text so every client can read it.
SELECT event_id, session_id, page_url, recorded_at, user_id, referrer, user_agent,
       duration_s, CAST(properties AS TEXT) AS properties
FROM tb_pageview_event
