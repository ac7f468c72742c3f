-- Raw page-view events: the source of truth every aggregate is computed from.
CREATE TABLE IF NOT EXISTS tb_pageview_event (
    event_id     TEXT PRIMARY KEY,           -- the dedupe key
    session_id   TEXT NOT NULL,
    page_url     TEXT NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    user_id      TEXT,                       -- senders use strings and integers alike
    referrer     TEXT,
    user_agent   TEXT,
    duration_s   DOUBLE PRECISION,
    properties   JSON,
    ingested_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);
