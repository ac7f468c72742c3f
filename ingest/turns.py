"""One writer of aggregates at a time, across processes.

Aggregates computed by two concurrent PostgreSQL transactions would each miss
the other's events, so every commit that touches aggregates or expires raw
events takes turns on an exclusive lock of `tb_ingest_turn`, held until the
transaction ends. Not an advisory lock: any role may take one, so a query that
slipped past the guard could hold the key and stop every ingest; only the owner
can lock this table. DuckDB's writes are already serialised by the store (one
process owns the file).
"""

from __future__ import annotations

__all__ = ["take_turn"]


def take_turn(cursor, backend: str) -> None:
    """Wait for our turn; it lasts until the transaction ends."""
    if backend == "postgresql":
        # EXCLUSIVE lets plain reads of the table through and nothing else.
        cursor.execute("LOCK TABLE tb_ingest_turn IN EXCLUSIVE MODE")
