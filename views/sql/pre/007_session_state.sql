-- Incremental state that keeps daily aggregates exact at a cost proportional to
-- what a commit touches, not to the size of the day:
--   tb_session_day       each session's views and first/last view per UTC day
--                        (bounce = exactly one view; duration = last - first);
--   tb_page_session_day  which sessions viewed which page that day;
--   bounced, span_us_sum the exact integer sums behind bounce_rate and
--                        avg_session_duration.
CREATE TABLE IF NOT EXISTS tb_session_day (
    session_id  TEXT NOT NULL,
    day         DATE NOT NULL,
    views       BIGINT NOT NULL,
    first_at    TIMESTAMPTZ NOT NULL,
    last_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, day)
);

CREATE TABLE IF NOT EXISTS tb_page_session_day (
    page_url    TEXT NOT NULL,
    day         DATE NOT NULL,
    session_id  TEXT NOT NULL,
    views       BIGINT NOT NULL,
    PRIMARY KEY (page_url, day, session_id)
);

ALTER TABLE tb_pageview_aggregate ADD COLUMN bounced BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tb_pageview_aggregate ADD COLUMN span_us_sum BIGINT NOT NULL DEFAULT 0;

-- Databases that already hold events: build the state from them.
INSERT INTO tb_session_day (session_id, day, views, first_at, last_at)
SELECT session_id, CAST(timezone('UTC', recorded_at) AS DATE), count(*),
       min(recorded_at), max(recorded_at)
FROM tb_pageview_event
GROUP BY session_id, CAST(timezone('UTC', recorded_at) AS DATE);

INSERT INTO tb_page_session_day (page_url, day, session_id, views)
SELECT page_url, CAST(timezone('UTC', recorded_at) AS DATE), session_id, count(*)
FROM tb_pageview_event
GROUP BY page_url, CAST(timezone('UTC', recorded_at) AS DATE), session_id;

UPDATE tb_pageview_aggregate
SET bounced = s.bounced, span_us_sum = s.span_us_sum
FROM (SELECT p.page_url, p.day,
             sum(CASE WHEN d.views = 1 THEN 1 ELSE 0 END) AS bounced,
             sum(CAST(ROUND(EXTRACT(EPOCH FROM d.last_at - d.first_at) * 1000000) AS BIGINT))
                 AS span_us_sum
      FROM tb_page_session_day p
      JOIN tb_session_day d ON d.session_id = p.session_id AND d.day = p.day
      GROUP BY p.page_url, p.day) s
WHERE tb_pageview_aggregate.page_url = s.page_url AND tb_pageview_aggregate.date = s.day;
