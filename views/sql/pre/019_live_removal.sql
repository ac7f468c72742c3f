-- Rows deleted from a live view, written in the same transaction as the DELETE
-- (ingest/live_removals.py), so the publisher can tell live subscribers the row
-- is gone. `key` holds the view's key columns as text, in declaration order;
-- the publisher casts them back to the view's types. Entries of a version are
-- deleted with its outbox entry, once published. Owner only: not a `va_` view.
CREATE TABLE IF NOT EXISTS tb_live_removal (
    view     TEXT NOT NULL,
    version  BIGINT NOT NULL,
    key      TEXT[] NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_live_removal_version ON tb_live_removal (version);
