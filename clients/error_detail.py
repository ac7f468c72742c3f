"""The structured part of a flightdeck error: which rule, column, row and view.

The server sends it beside the human sentence as one gRPC trailer, `TRAILER`,
holding a small JSON object such as `{"rule": "not-null", "column": "page_url",
"row": 3}`; the client reads its fields from there, never from the sentence.
A trailer, not the Flight error's `extra_info`: pyarrow sends `extra_info` only
with Flight's own codes (INTERNAL, UNAVAILABLE, ...), never with INVALID_ARGUMENT
or NOT_FOUND, where refusals live, while a trailer travels with every status
(JDBC and ADBC users who see only text still read the sentence).

Standard library only: the client imports it without the server's dependencies.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

__all__ = ["TRAILER", "ErrorDetail", "decode", "encode"]

# `-bin`: gRPC carries the value as bytes, so any column name passes unescaped.
TRAILER = "flightdeck-error-detail-bin"


@dataclass(frozen=True, kw_only=True)
class ErrorDetail:
    """What was refused, in the caller's words; None where the error names no such thing.
    `row` counts from 0 across a whole put."""

    rule: str | None = None
    column: str | None = None
    row: int | None = None
    view: str | None = None

    def __bool__(self) -> bool:
        return any(value is not None for value in asdict(self).values())


_TYPES = {"rule": str, "column": str, "row": int, "view": str}


def encode(detail: ErrorDetail) -> bytes:
    """The trailer's value: the named fields only."""
    named = {key: value for key, value in asdict(detail).items() if value is not None}
    return json.dumps(named, ensure_ascii=False, separators=(",", ":")).encode()


def decode(data: bytes | str) -> ErrorDetail:
    """The detail a trailer holds; a field that is absent, unknown or of the wrong
    type is None (a newer or a broken server must not break the client's error)."""
    try:
        named = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return ErrorDetail()
    if not isinstance(named, dict):
        return ErrorDetail()
    return ErrorDetail(**{key: _typed(named.get(key), kind) for key, kind in _TYPES.items()})


def _typed(value: object, kind: type) -> object:
    # bool is an int to Python, never a row number.
    return value if isinstance(value, kind) and not isinstance(value, bool) else None
