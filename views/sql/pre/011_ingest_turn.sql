-- Ingest commits take turns by locking this table (ingest/turns.py). It replaced
-- an advisory lock, which any role may take: a reader holding its key could stop
-- every ingest. Only the owner may lock a table it owns and no one else can read.
CREATE TABLE IF NOT EXISTS tb_ingest_turn (
    id  INTEGER PRIMARY KEY
);
