"""What PostgreSQL itself says is running: whether a query the server started still runs."""

from __future__ import annotations

import adbc_driver_postgresql.dbapi as pg


def active_queries(db_url: str, containing: str) -> int:
    """Queries active now on the server whose text contains `containing`, this one excepted."""
    with pg.connect(db_url) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND strpos(query, $1) > 0 AND pid <> pg_backend_pid()",
            (containing,),
        )
        return cursor.fetchone()[0]
