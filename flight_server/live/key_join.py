"""Joins of live rows by their view's key, in which NULL matches NULL.

A rollup keeps a missing dimension (`host` of a page sent as a path) as NULL in
its view, so NULL is part of a row's key. Arrow's joins never match null keys:
a member of a top-N whose key held a NULL looked like it had left, and a row
leaving a filter looked like one the subscriber never held. When a key column
holds a null on either side the join goes through text tokens of the key
values instead, with NULL as a token of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["join_on_keys"]

_NULL = "\x00"  # no stored text holds NUL (PostgreSQL refuses it)


def join_on_keys(left: pa.Table, right: pa.Table, keys: Sequence[str], join_type: str) -> pa.Table:
    """`left.join(right, keys, join_type=…)` for the left joins the live path uses
    (semi, anti, outer): the key columns come from `left`."""
    keys = list(keys)
    if not any(table.column(k).null_count for table in (left, right) for k in keys):
        return left.join(right, keys, join_type=join_type)
    tokens = [f"__flightdeck_key_{i}" for i in range(len(keys))]
    joined = _tokenised(left, keys, tokens).join(
        _tokenised(right, keys, tokens).drop_columns(keys), tokens, join_type=join_type
    )
    return joined.drop_columns(tokens)


def _tokenised(table: pa.Table, keys: list[str], tokens: list[str]) -> pa.Table:
    for key, token in zip(keys, tokens, strict=True):
        text = pc.cast(table.column(key), pa.string())
        table = table.append_column(token, pc.fill_null(text, _NULL))
    return table
