"""Who may write beside whom, across processes (PostgreSQL).

Aggregates computed by two concurrent transactions would each miss the other's
events, so every fold into the aggregates takes turns on an exclusive lock of
`tb_ingest_turn`, held until the transaction ends.

Appending a put's events is most of a PostgreSQL put (COPY and index upkeep) and
needs no turn of its own: a put held in memory appends under a shared lock of
`tb_ingest_gate` (`join_appends`), locks its sessions and works out its fold
(session_locks.py), and takes the turn only to write the rows sessions share
(`take_fold_turn`). Two such puts sending one event_id collide on the
primary key: the later one's COPY waits for the earlier to end, is refused, and
that put goes the staged way. Every other writer (a staged put, retention,
reaggregate, a load-status question) takes the gate exclusively first, then the
turn (`take_turn`): no append runs beside it, so its `ON CONFLICT` never waits on
a put that waits on its turn, and retention never races an append into the day
it expires. One order (gate, sessions, turn) for everyone: no deadlock.

Tables, not advisory locks: any role may take an advisory lock, so a query that
slipped past the guard could hold the key and stop every ingest; only the owner
can lock these tables. DuckDB's writes are already serialised by the store (one
process owns the file).
"""

from __future__ import annotations

__all__ = ["join_appends", "take_fold_turn", "take_turn"]


def take_turn(cursor, backend: str) -> None:
    """Wait until no other writer runs; the turn lasts until the transaction ends."""
    if backend == "postgresql":
        # EXCLUSIVE lets plain reads of the tables through and nothing else.
        cursor.execute("LOCK TABLE tb_ingest_gate IN EXCLUSIVE MODE")
        cursor.execute("LOCK TABLE tb_ingest_turn IN EXCLUSIVE MODE")


def join_appends(cursor, backend: str) -> None:
    """Append beside other held puts (none of the writers `take_turn` is running)."""
    if backend == "postgresql":
        cursor.execute("LOCK TABLE tb_ingest_gate IN ROW SHARE MODE")


def take_fold_turn(cursor, backend: str) -> None:
    """After `join_appends`: wait for the turn to fold into the aggregates."""
    if backend == "postgresql":
        cursor.execute("LOCK TABLE tb_ingest_turn IN EXCLUSIVE MODE")
