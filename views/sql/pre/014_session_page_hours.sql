-- The page-session state folds into the session-day state: each session-day
-- lists the page-hours it viewed ('HH page_url', HH its UTC hour). A commit then
-- reads and writes one row per touched session-day (tb_page_session_day held
-- one per page, about one per event), and the list also gives exact hourly
-- visitors without recounting the hour's raw events.
ALTER TABLE tb_session_day ADD COLUMN pages TEXT[];

-- Stores that already hold events: fill the lists from them.
UPDATE tb_session_day
SET pages = k.pages
FROM (SELECT session_id, day, array_agg(DISTINCT ph ORDER BY ph) AS pages
      FROM (SELECT session_id, CAST(timezone('UTC', recorded_at) AS DATE) AS day,
                   lpad(CAST(CAST(EXTRACT(HOUR FROM timezone('UTC', recorded_at)) AS INTEGER)
                       AS TEXT), 2, '0') || ' ' || page_url AS ph
            FROM tb_pageview_event) e
      GROUP BY session_id, day) k
WHERE tb_session_day.session_id = k.session_id AND tb_session_day.day = k.day;

DROP TABLE tb_page_session_day;
