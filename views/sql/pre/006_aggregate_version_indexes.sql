-- PostgreSQL: the outbox publisher reads the rows of one version at a time.
CREATE INDEX IF NOT EXISTS ix_pageview_aggregate_version
    ON tb_pageview_aggregate (version);
CREATE INDEX IF NOT EXISTS ix_pageview_hourly_version
    ON tb_pageview_hourly (version);
