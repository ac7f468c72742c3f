-- Declared rollups the store keeps (docs/rollups.md): each one's declaration as
-- written, so every writer of the store (the server, `flightdeck ingest`
-- workers) folds the same rollups, whatever files it was started with.
CREATE TABLE IF NOT EXISTS tb_rollup (
    name          TEXT PRIMARY KEY,
    spec          TEXT NOT NULL,
    installed_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Active users' shared state: who was active on which UTC day.
CREATE TABLE IF NOT EXISTS tb_user_day (
    day      DATE NOT NULL,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (day, user_id)
);
