"""The tables a rollup is kept in and the view it is served as (docs/rollups.md).

`tb_rollup_<name>`: one row per bucket and dimension values, with the sums of
rollup_sql.state_columns, the recounted measures, `version` and `computed_at`.
`tb_rollup_<name>_user`: per row, the visits of each user (only when it
measures visitors). `va_<name>` derives each declared measure from the sums.
"""

from __future__ import annotations

from flightdeck.views.rollup_spec import ACTIVE_USERS, RECOUNTED, Rollup

from .rollup_sql import NULL_TEXT, measure_sql, state_columns

__all__ = ["create_statements", "drop_statements", "user_table", "view_sql"]

_BUCKET_TYPE = {"hour": "TIMESTAMPTZ", "day": "DATE", "week": "DATE", "month": "DATE"}


def user_table(rollup: Rollup) -> str | None:
    if any(m.kind == "visitors" for m in rollup.measures):
        return f"{rollup.table}_user"
    return None


def create_statements(rollup: Rollup) -> list[str]:
    if rollup.active_users:
        return [_active_users_table(rollup)]
    key = [f"{rollup.bucket} {_BUCKET_TYPE[rollup.grain]} NOT NULL"]
    key += [f"{d.column} TEXT NOT NULL" for d in rollup.dimensions]
    sums = [
        f"{c} {'DOUBLE PRECISION' if c.startswith('p_sum_') else 'BIGINT'} NOT NULL DEFAULT 0"
        for c in state_columns(rollup)
    ]
    recounted = [f"r_{m.column} DOUBLE PRECISION" for m in rollup.measures if m.kind in RECOUNTED]
    columns = [
        *key,
        *sums,
        *recounted,
        "version BIGINT NOT NULL",
        "computed_at TIMESTAMPTZ NOT NULL",
    ]
    statements = [
        f"CREATE TABLE {rollup.table} ({', '.join(columns)}, "
        f"PRIMARY KEY ({', '.join(rollup.key)}))",
        f"CREATE INDEX ix_{rollup.table}_version ON {rollup.table} (version)",
    ]
    users = user_table(rollup)
    if users:
        statements.append(
            f"CREATE TABLE {users} ({', '.join(key)}, user_id TEXT NOT NULL, "
            f"visits BIGINT NOT NULL, PRIMARY KEY ({', '.join(rollup.key)}, user_id))"
        )
    return statements


def _active_users_table(rollup: Rollup) -> str:
    counts = [f"{m.column} BIGINT NOT NULL" for m in rollup.measures]
    return (
        f"CREATE TABLE {rollup.table} (date DATE PRIMARY KEY, {', '.join(counts)}, "
        "version BIGINT NOT NULL, computed_at TIMESTAMPTZ NOT NULL)"
    )


def drop_statements(rollup_name: str) -> list[str]:
    table = f"tb_rollup_{rollup_name}"
    return [
        f"DROP VIEW IF EXISTS va_{rollup_name}",
        f"DROP TABLE IF EXISTS {table}_user",
        f"DROP TABLE IF EXISTS {table}",
    ]


def view_sql(rollup: Rollup) -> str:
    """The view's SELECT: key, measures, version, computed_at (docs/rollups.md)."""
    columns = [rollup.bucket]
    columns += [f"NULLIF({d.column}, {NULL_TEXT}) AS {d.column}" for d in rollup.dimensions]
    for measure in rollup.measures:
        if measure.kind in ACTIVE_USERS:
            columns.append(measure.column)
        else:
            columns.append(f"{measure_sql(measure)} AS {measure.column}")
    columns += ["version", "computed_at"]
    return f"SELECT {', '.join(columns)} FROM {rollup.table}"
