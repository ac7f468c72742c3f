"""One writer of aggregates at a time, across processes.

Aggregates computed by two concurrent PostgreSQL transactions would each miss
the other's events, so every commit that touches aggregates or expires raw
events takes turns on one transaction-scoped advisory lock. DuckDB's writes
are already serialised by the store (one process owns the file).
"""

from __future__ import annotations

__all__ = ["take_turn"]

_LOCK_KEY = 0x666C6463  # any fixed number, the same in every flightdeck process


def take_turn(cursor, backend: str) -> None:
    """Wait for our turn; it lasts until the transaction ends."""
    if backend == "postgresql":
        cursor.execute(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        cursor.fetchall()
