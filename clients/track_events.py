"""One tracked event as the row the server stores, and a group of them as an Arrow table.

Everything that can be wrong with a `track()` call is found here, on the
caller's thread, so that the background sender only ever holds rows that a
put can carry.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

__all__ = ["TRACK_SCHEMA", "check_event_type", "event_row", "rows_table", "warm_up"]

TRACK_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        ("recorded_at", pa.timestamp("us", "UTC")),
        ("page_url", pa.string()),
        ("referrer", pa.string()),
        ("user_agent", pa.string()),
        ("duration_s", pa.float64()),
        ("properties", pa.string()),
    ]
)
_TEXT = ("session_id", "user_id", "page_url", "referrer", "user_agent")
# The type names: lowercase, dots, underscores, dashes (`user.login`).
_TYPE_NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")


def check_event_type(event_type: str) -> str:
    if not isinstance(event_type, str) or not _TYPE_NAME.fullmatch(event_type):
        raise ValueError(
            f"event type {event_type!r}: use lowercase letters, digits, dots, underscores "
            "and dashes, starting with a letter (e.g. 'pageview', 'user.login')"
        )
    return event_type


def event_row(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` as a row of TRACK_SCHEMA: an `event_id` (uuid4 hex unless given, so a
    resend dedupes), `recorded_at` (now, UTC, unless given), core fields in their
    columns, every other keyword inside the `properties` JSON object."""
    rest = dict(fields)
    row: dict[str, Any] = {
        "event_id": _text(rest.pop("event_id", None)) or uuid.uuid4().hex,
        "recorded_at": _utc(rest.pop("recorded_at", None)),
    }
    for name in _TEXT:
        row[name] = _text(rest.pop(name, None))
    row["duration_s"] = _seconds(rest.pop("duration_s", None))
    row["properties"] = _properties(rest.pop("properties", None), rest)
    return row


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The rows as one table, without the columns no row sets: the server then applies
    its own rule for an absent optional column rather than a column of nulls."""
    table = pa.Table.from_pylist(rows, schema=TRACK_SCHEMA)
    keep = [
        name
        for name in table.column_names
        if name in ("event_id", "recorded_at") or table.column(name).null_count < len(rows)
    ]
    return table.select(keep)


def warm_up() -> None:
    """Let pyarrow look for pandas now, on the caller's thread, once per process (≈ 0.2 s
    when pandas is not imported yet): its first Python-to-Arrow conversion imports
    pandas, and that import fails once the interpreter is shutting down, which is
    when the exit flush builds its tables."""
    pa.array([], pa.string())


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _utc(value: Any) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"recorded_at {value!r} is not ISO 8601 date-time text") from None
    if not isinstance(value, dt.datetime):
        raise TypeError(f"recorded_at takes a datetime or ISO text, not {type(value).__name__}")
    # A naive time is taken as UTC, the store's only zone.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"duration_s takes a number of seconds, not {type(value).__name__}")
    return float(value)


def _properties(given: Any, extra: dict[str, Any]) -> str | None:
    if isinstance(given, str):
        given = json.loads(given)  # JSON text is accepted; it must hold an object
    if given is not None and not isinstance(given, Mapping):
        raise TypeError(f"properties takes a mapping or JSON object text, not {type(given)}")
    merged = {**(given or {}), **extra}
    if not merged:
        return None
    # default=str: a datetime or UUID among the properties is sent as its text
    # rather than failing the call.
    return json.dumps(merged, default=str, separators=(",", ":"))
