"""Read the one number a statement returns, inside a write transaction."""

from __future__ import annotations

__all__ = ["scalar"]


def scalar(cursor, sql: str) -> int:
    cursor.execute(sql)
    # fetchall, not fetchone: a DuckDB result left unread aborts the transaction.
    return int(cursor.fetchall()[0][0])
