-- The key that signs live updates (ingest/update_signature.py): every process on
-- this store signs and verifies with it. One row, written by the first process
-- that needs it. Like every tb_ table it is never served to queries.
CREATE TABLE IF NOT EXISTS tb_live_signing_key (
    id          SMALLINT PRIMARY KEY,
    secret      VARCHAR NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);
