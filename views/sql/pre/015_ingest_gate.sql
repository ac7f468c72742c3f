-- Puts held in memory append their events beside one another and take the
-- aggregate turn (tb_ingest_turn) only to fold them in; every other writer
-- excludes them all first (ingest/turns.py). A table for the same reason as
-- tb_ingest_turn: only its owner may lock it.
CREATE TABLE IF NOT EXISTS tb_ingest_gate (
    id  INTEGER PRIMARY KEY
);
