"""Folds of different sessions side by side, across processes (PostgreSQL).

What a fold reads and rewrites of a session, its session-days (aggregates.py) and
its visits' events before the commit (rollups.py), belongs to that session alone.
So a fold first locks its sessions, and only then reads them: two folds that share
a session take turns, two that do not prepare their parts at once. Only the writes
to rows that sessions share (page-days, rollup rows, users) and the version are
left for the writer's turn (turns.py), which is short by comparison.

The lock rows (`tb_session_lock`) are hash buckets of session_id: the table stays
bounded, and two sessions in one bucket only wait for each other. Every bucket of
a fold is locked in one statement, in bucket order, so two folds never hold each
what the other waits for. DuckDB has one writer: nothing to lock.
"""

from __future__ import annotations

__all__ = ["BUCKETS", "lock_sessions"]

BUCKETS = 1 << 20


def lock_sessions(cursor, backend: str, events: str) -> None:
    """Lock the sessions of the events in table `events` until the transaction ends."""
    if backend != "postgresql":
        return
    # ON CONFLICT DO UPDATE locks a bucket that exists; an insert locks a new one.
    # hashtext() is PostgreSQL's own: every process on one store hashes alike.
    cursor.execute(
        f"""INSERT INTO tb_session_lock (bucket)
            SELECT DISTINCT hashtext(session_id) & {BUCKETS - 1} FROM {events} ORDER BY 1
            ON CONFLICT (bucket) DO UPDATE SET bucket = excluded.bucket"""
    )
