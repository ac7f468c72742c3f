-- Dimensions derived from each page view at ingest (ingest/derived/, docs/metrics.md
-- "Derived dimensions"), stored so rollups group by them without parsing URLs or
-- user agents again. Rows stored before this migration have them null until
-- `flightdeck migrate` (or `serve`) fills them in Python (ingest/derived_backfill.py):
-- SQL has no user-agent parser, and one implementation of the rules keeps them one.
ALTER TABLE tb_pageview_event ADD COLUMN path TEXT;
ALTER TABLE tb_pageview_event ADD COLUMN host TEXT;
ALTER TABLE tb_pageview_event ADD COLUMN referrer_host TEXT;
ALTER TABLE tb_pageview_event ADD COLUMN source TEXT;
ALTER TABLE tb_pageview_event ADD COLUMN medium TEXT;
ALTER TABLE tb_pageview_event ADD COLUMN campaign TEXT;
ALTER TABLE tb_pageview_event ADD COLUMN browser TEXT;
ALTER TABLE tb_pageview_event ADD COLUMN os TEXT;
ALTER TABLE tb_pageview_event ADD COLUMN device TEXT;
