"""Columns an event of a type other than `pageview` carries beyond the core: kept in
`properties` rather than dropped (issue 19).

Each extra column becomes a key of the row's `properties` object, nulls left out.
On a clash the key the sender put in `properties` itself wins: it was written
there on purpose, a column of the same name may be a batch-wide default. Rows
whose `properties` is JSON but not an object cannot take keys: refused. Page
views keep today's rule (extra columns ignored): their path is the throughput
ceiling, and their senders rely on it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping

import pyarrow as pa

from .errors import InvalidBatch

__all__ = ["merge_extras"]


def merge_extras(
    properties: pa.Array, extras: Mapping[str, pa.Array], first_row: int, limit: int
) -> pa.Array:
    """`properties` (JSON text, checked) with the `extras` columns merged into each row."""
    if not extras:
        return properties
    values = {name: column.to_pylist() for name, column in extras.items()}
    merged = []
    for row, text in enumerate(properties.to_pylist()):
        sent = {name: v[row] for name, v in values.items() if v[row] is not None}
        merged.append(_merged(text, sent, first_row + row, limit) if sent else text)
    return pa.array(merged, pa.string())


def _merged(text: str | None, sent: dict, row: int, limit: int) -> str:
    own = json.loads(text) if text is not None else {}
    if not isinstance(own, dict):
        raise InvalidBatch(
            "properties",
            row,
            "json-object",
            f"extra columns ({', '.join(sorted(sent))}) are kept in properties, which must "
            "then be a JSON object",
        )
    for name, value in sent.items():
        _check_value(name, value, row)
    out = json.dumps({**sent, **own}, default=_plain, allow_nan=False, ensure_ascii=False)
    if len(out.encode()) > limit:
        raise InvalidBatch(
            "properties",
            row,
            "length",
            f"with the extra columns merged in, properties would be over {limit} bytes",
        )
    return out


def _check_value(name: str, value: object, row: int) -> None:
    if isinstance(value, str) and "\x00" in value:
        # PostgreSQL's jsonb refuses the escaped NUL, and every query reading it.
        raise InvalidBatch(name, row, "text", "holds a NUL character")
    try:
        json.dumps(value, default=_plain, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidBatch(
            name, row, "json", f"an extra column is kept in properties as JSON: {exc}"
        ) from None


def _plain(value: object) -> object:
    """JSON for what Arrow columns hold beyond JSON's own types."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form; send text")
