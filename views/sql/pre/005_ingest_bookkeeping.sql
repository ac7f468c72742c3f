-- What each ingest commit changed, written in the same transaction as the change.
-- A publisher sends each entry's rows to NATS and then deletes the entry, so a
-- crash between commit and publish delays an update but never loses it.
CREATE TABLE IF NOT EXISTS tb_aggregate_outbox (
    version     BIGINT PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- UTC days whose raw events retention deleted. Their aggregates are kept and
-- final: a late event for such a day is refused, because recomputing the day
-- from what raw events remain would lose the kept counts.
CREATE TABLE IF NOT EXISTS tb_expired_day (
    day         DATE PRIMARY KEY,
    expired_at  TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
);
