-- Loads that named themselves (a DoPut's first app_metadata {"load_id": ...}), one
-- row each, written in the load's own transaction: a client whose Ctrl-C came as
-- the server committed asks (action "load-status") whether its load is stored.
CREATE TABLE IF NOT EXISTS tb_load (
    load_id       VARCHAR PRIMARY KEY,
    accepted      BIGINT NOT NULL,
    duplicates    BIGINT NOT NULL,
    committed_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);
