-- Raw events of every type but the page view (issue 19). Page views stay in
-- tb_pageview_event, which the page-view aggregates, retention and reaggregate
-- read; va_event serves both as one. Same core columns; page_url is optional
-- here (only a page view must name its page); properties holds every column a
-- sender sent beyond the core.
CREATE TABLE IF NOT EXISTS tb_event (
    event_id     TEXT PRIMARY KEY,           -- the dedupe key
    event_type   TEXT NOT NULL,              -- 'user.login', 'api.request', … never 'pageview'
    session_id   TEXT NOT NULL,
    page_url     TEXT,
    recorded_at  TIMESTAMPTZ NOT NULL,
    user_id      TEXT,
    referrer     TEXT,
    user_agent   TEXT,
    duration_s   DOUBLE PRECISION,
    properties   JSON,
    ingested_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- Derived at ingest, as for page views (017, ingest/derived).
    path           TEXT,
    host           TEXT,
    referrer_host  TEXT,
    source         TEXT,
    medium         TEXT,
    campaign       TEXT,
    browser        TEXT,
    os             TEXT,
    device         TEXT
);
-- Retention deletes by time; rollups read one type over a time range.
CREATE INDEX IF NOT EXISTS ix_event_recorded_at ON tb_event (recorded_at);
CREATE INDEX IF NOT EXISTS ix_event_type_time ON tb_event (event_type, recorded_at);
-- A rollup reads the events of the sessions a commit touches (ingest/rollups.py).
CREATE INDEX IF NOT EXISTS ix_event_session_time ON tb_event (session_id, recorded_at);
