-- Each ingest commit takes the next number; aggregate rows carry the commit's
-- number as `version`, so live subscribers can drop stale deltas.
CREATE SEQUENCE IF NOT EXISTS sq_pageview_version;
