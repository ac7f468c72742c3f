-- Exact aggregates, kept current by the ingest pipeline in the same transaction
-- as the events. `version` only grows: live subscribers use it to drop stale deltas.
CREATE TABLE IF NOT EXISTS tb_pageview_aggregate (
    page_url              TEXT NOT NULL,
    date                  DATE NOT NULL,
    view_count            BIGINT NOT NULL,
    unique_visitors       BIGINT NOT NULL,
    bounce_rate           DOUBLE PRECISION NOT NULL,  -- percent, 0-100, 2 decimals
    avg_session_duration  DOUBLE PRECISION NOT NULL,  -- seconds
    computed_at           TIMESTAMPTZ NOT NULL,
    version               BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (page_url, date)
);

CREATE TABLE IF NOT EXISTS tb_pageview_hourly (
    page_url         TEXT NOT NULL,
    hour             TIMESTAMPTZ NOT NULL,
    view_count       BIGINT NOT NULL,
    unique_visitors  BIGINT NOT NULL,
    computed_at      TIMESTAMPTZ NOT NULL,
    version          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (page_url, hour)
);
