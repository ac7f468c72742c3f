"""After a rollup's rows were recounted from raw events: what really changed.

A repair deletes the rows of its buckets and folds every event again, so every
row comes back stamped with the repair's version. Compared with the rows as they
were, a row that came back the same is put back as it was (values, version,
computed_at): live subscribers are not sent what they already hold, and the
count of differences is what a check reports. Float sums compare within a
relative 1e-9: a sum kept put by put adds in another order than a recount
((0.1) + (0.2 + 0.3) against (0.1 + 0.2) + 0.3) and is the same sum.
"""

from __future__ import annotations

from collections.abc import Sequence

from flightdeck.views.rollup_spec import Rollup

from .live_removals import record_removals
from .scalar import scalar

__all__ = ["settle"]

_TOLERANCE = "1e-9"


def settle(
    cursor,
    rollup: Rollup,
    kept: Sequence[str],
    floats: frozenset[str],
    before: str,
    version: int,
) -> int:
    """Compare `rollup`'s rows of `version` with `before` (the rows the repair deleted,
    with their version and computed_at): put back those that came back equal, note the
    keys that did not come back as removed; how many rows differed."""
    table, key = rollup.table, rollup.key
    same_key = " AND ".join(f"t.{c} = b.{c}" for c in key)
    differs = " OR ".join(_differs(c, c in floats) for c in kept) or "FALSE"
    rebuilt = f"t.version = {int(version)}"
    differed = scalar(
        cursor,
        f"""SELECT (SELECT count(*) FROM {before} b
                    WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same_key}))
                 + (SELECT count(*) FROM {table} t
                    WHERE {rebuilt} AND NOT EXISTS (SELECT 1 FROM {before} b WHERE {same_key}))
                 + (SELECT count(*) FROM {table} t JOIN {before} b ON {same_key}
                    WHERE {rebuilt} AND ({differs}))""",
    )
    restored = ", ".join(f"{c} = b.{c}" for c in [*kept, "version", "computed_at"])
    cursor.execute(
        f"UPDATE {table} AS t SET {restored} FROM {before} b "
        f"WHERE {same_key} AND {rebuilt} AND NOT ({differs})"
    )
    gone = f"NOT EXISTS (SELECT 1 FROM {table} t WHERE {same_key})"
    record_removals(cursor, rollup.view, f"{before} b", key, gone, version)
    return int(differed or 0)


def _differs(column: str, is_float: bool) -> str:
    """SQL true when the recounted `t.column` is not the old `b.column` (never NULL)."""
    t, b = f"t.{column}", f"b.{column}"
    if not is_float:
        return f"{t} IS DISTINCT FROM {b}"
    return (
        f"(CASE WHEN {t} IS NULL OR {b} IS NULL THEN {t} IS DISTINCT FROM {b} "
        f"ELSE abs({t} - {b}) > {_TOLERANCE} * greatest(abs({t}), abs({b})) END)"
    )
