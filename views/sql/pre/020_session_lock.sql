-- Anchors for row locks that let folds of different sessions run side by side
-- (ingest/session_locks.py). A row holds no data: it is locked, never read. Its key
-- is a hash bucket of session_id, so the table stays bounded (2^20 rows at most)
-- and two sessions that share a bucket only take turns.
CREATE TABLE IF NOT EXISTS tb_session_lock (
    bucket  INTEGER PRIMARY KEY
);
