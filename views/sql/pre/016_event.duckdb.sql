-- Raw events of every type but the page view (issue 19); see 016_event.sql.
-- DuckDB: no secondary indexes, as for tb_pageview_event (003): zone maps prune
-- the time ranges, and ART indexes would slow every append.
CREATE TABLE IF NOT EXISTS tb_event (
    event_id     TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
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
