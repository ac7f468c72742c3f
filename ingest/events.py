"""The page-view event schema, and turning what senders send into it.

The columns and the JSON shape are the README's ("Load events", "Publish events
to NATS").

All checks and casts are column-wise Arrow compute; only on the error path do
we look at single values, to name the first bad row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InvalidBatch
from .event_types import PAGEVIEW
from .extra_columns import merge_extras
from .value_rules import TEXT_LIMITS, check_values, time_range

__all__ = ["EVENT_SCHEMA", "TYPED_SCHEMA", "check_not_expired", "normalise"]

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("page_url", pa.string(), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", "UTC"), nullable=False),
        ("user_id", pa.string()),
        ("referrer", pa.string()),
        ("user_agent", pa.string()),
        ("duration_s", pa.float64()),
        ("properties", pa.string()),
    ]
)
# Events of other types than the page view: the same columns, page_url optional.
TYPED_SCHEMA = EVENT_SCHEMA.set(
    EVENT_SCHEMA.get_field_index("page_url"), pa.field("page_url", pa.string())
)
REQUIRED = ("session_id", "page_url", "recorded_at")
TYPED_REQUIRED = ("session_id", "recorded_at")
# Blank text is no page and no session: it would be counted as one.
NOT_EMPTY = ("session_id", "page_url")
# Senders' names for our columns (the seed's JSON uses `timestamp` and `user_pk`).
ALIASES = {"timestamp": "recorded_at", "user_pk": "user_id"}
_SURROGATE_ESCAPE = r"\\ud[89a-f]"  # a JSON escape of a UTF-16 surrogate, any case


def normalise(
    batch: pa.RecordBatch,
    first_row: int = 0,
    json_checked: pa.Array | None = None,
    event_type: str = PAGEVIEW,
) -> pa.RecordBatch:
    """`batch` in EVENT_SCHEMA (TYPED_SCHEMA for other types than `event_type`
    pageview), or InvalidBatch naming the column, row and rule.

    `json_checked` (a boolean per row) marks `properties` the caller made itself with
    `json.dumps` and found free of what the JSON check refuses, so it is not parsed again.

    Extra columns are ignored for page views and kept in `properties` for other
    types (extra_columns.py); missing optional ones become nulls; a missing or null
    event_id becomes a key built from the event's content, so re-sending the same
    rows dedupes. Errors name a column as the batch did (`timestamp`, say).
    """
    try:
        return _normalise(batch, first_row, json_checked, event_type)
    except InvalidBatch as exc:
        sent = _senders_name(batch.schema.names, exc.column)
        if sent == exc.column:
            raise
        raise InvalidBatch(sent, exc.row, exc.rule, exc.detail) from None


def _senders_name(names: list[str], column: str | None) -> str | None:
    """The batch's own name for `column`: our name if it has it, else its alias."""
    if column is None or column in names:
        return column
    return next((n for n in names if ALIASES.get(n) == column), column)


def _normalise(
    batch: pa.RecordBatch, first_row: int, json_checked: pa.Array | None, event_type: str
) -> pa.RecordBatch:
    columns = _by_name(batch)
    typed = event_type != PAGEVIEW
    required = TYPED_REQUIRED if typed else REQUIRED
    for name in required:
        if name not in columns:
            raise InvalidBatch(name, None, "required-column", f"missing; sent: {sorted(columns)}")
    out = {}
    for field in EVENT_SCHEMA:
        if field.name == "event_id":
            continue
        raw = columns.get(field.name)
        out[field.name] = (
            pa.nulls(batch.num_rows, field.type) if raw is None else _cast(raw, field, first_row)
        )
    for name in required:
        _require_values(out[name], name, first_row)
    given = columns.get("event_id")
    if given is not None:
        given = _cast(given, EVENT_SCHEMA.field("event_id"), first_row)
    sent = {**out, "event_id": given} if given is not None else out
    check_values(sent, _plain(columns["recorded_at"]), first_row)
    for name in NOT_EMPTY:  # after check_values: trimming needs valid UTF-8
        _require_text(out[name], name, first_row)
    unchecked = out["properties"]
    if json_checked is not None:  # nulls keep the rows' positions for the error's row
        unchecked = pc.if_else(json_checked, pa.scalar(None, pa.string()), unchecked)
    _check_json(unchecked, first_row)  # after its length is known to be bounded
    if not typed:
        out["event_id"] = _event_ids(given, out)
        return pa.RecordBatch.from_arrays([out[f.name] for f in EVENT_SCHEMA], schema=EVENT_SCHEMA)
    out["properties"] = merge_extras(
        out["properties"], _extras(batch), first_row, TEXT_LIMITS["properties"]
    )
    out["event_id"] = _event_ids(given, out, event_type)
    return pa.RecordBatch.from_arrays([out[f.name] for f in TYPED_SCHEMA], schema=TYPED_SCHEMA)


def _extras(batch: pa.RecordBatch) -> dict[str, pa.Array]:
    """The batch's columns that are neither core columns nor their aliases (`event_type`
    is the put's own: a column of that name is not kept)."""
    core = {*EVENT_SCHEMA.names, *ALIASES, "event_type"}
    return {
        name: _plain(column)
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
        if name not in core
    }


def _by_name(batch: pa.RecordBatch) -> dict[str, pa.Array]:
    columns: dict[str, pa.Array] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        canonical = ALIASES.get(name, name)
        if canonical not in columns or canonical == name:
            columns[canonical] = column
    return columns


def _plain(column: pa.Array) -> pa.Array:
    """The values as sent, without an extension type or dictionary around them."""
    if isinstance(column.type, pa.BaseExtensionType):
        column = column.storage
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column


def _cast(column: pa.Array, field: pa.Field, first_row: int) -> pa.Array:
    column = _plain(column)
    if field.name == "recorded_at":
        return _timestamps(column, first_row)
    if field.name == "properties":
        if not (_is_text(column.type) or pa.types.is_null(column.type)):
            raise InvalidBatch(field.name, None, "type", f"send JSON text, not {column.type}")
        column = column.cast(field.type)
    elif field.type == pa.string() and _no_one_text_form(column.type):
        # 1.0 or 1? true or True? Integers and binary (UTF-8) have one; and
        # NATS's JSON refuses it the same way (json_events.py, _text).
        row = _first_valid(column)
        raise InvalidBatch(
            field.name,
            _at(first_row, row),
            "type",
            f"send text (ids may be integers), not {column.type}",
        )
    try:
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        row = _first_failure(column, lambda one: one.cast(field.type))
        raise InvalidBatch(
            field.name,
            _at(first_row, row),
            "type",
            f"cannot cast {column.type} to {field.type}: {exc}",
        ) from None


def _check_json(column: pa.Array, first_row: int) -> None:
    """Refuse properties that are not JSON: the store would refuse the put later, unclearly.

    Arrow has no JSON check, so each distinct value is parsed once. PostgreSQL
    refuses NaN and Infinity, which Python's parser would let through.
    """
    distinct = pc.unique(column.drop_null())
    # Only an escape \uD800-\uDFFF can make a lone surrogate (Arrow text is valid
    # UTF-8): the costly re-encoding check is for the few values that have one.
    escaped = pc.match_substring_regex(distinct, _SURROGATE_ESCAPE, ignore_case=True)
    maybe_lone = set(distinct.filter(escaped).to_pylist())
    for value in distinct.to_pylist():
        if value not in maybe_lone and _strict_json(value):
            continue
        try:
            parsed = json.loads(value, parse_constant=_not_json)
        except RecursionError:
            row = pc.index(column, value).as_py()
            raise InvalidBatch(
                "properties", _at(first_row, row), "json", "nested too deeply to read back"
            ) from None
        except ValueError as exc:
            row = pc.index(column, value).as_py()
            raise InvalidBatch(
                "properties", _at(first_row, row), "json", f"not JSON text ({exc}): {value[:60]!r}"
            ) from None
        if value in maybe_lone:
            _check_no_lone_surrogate(column, value, parsed, first_row)


def _strict_json(value: str) -> bool:
    """Whether orjson (RFC 8259, no NaN or Infinity, ~3x json.loads) reads `value`.

    What it refuses goes through json.loads, which names the fault (or, for a number
    past a float's range or a depth past orjson's, takes it as before)."""
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return True


def _check_no_lone_surrogate(column: pa.Array, value: str, parsed: object, first_row: int) -> None:
    """An escaped lone surrogate ("\\ud800") is no character: DuckDB refuses it mid-commit,
    PostgreSQL stores it, and no client can read it back as UTF-8."""
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        row = pc.index(column, value).as_py()
        raise InvalidBatch(
            "properties",
            _at(first_row, row),
            "text",
            f"holds an escaped lone surrogate, which is no character: {value[:60]!r}",
        ) from None


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _timestamps(column: pa.Array, first_row: int) -> pa.Array:
    """ISO 8601 text or Arrow timestamps; a value without a zone is UTC."""
    if not (
        pa.types.is_timestamp(column.type) or pa.types.is_date(column.type) or _is_text(column.type)
    ):
        raise InvalidBatch("recorded_at", None, "type", f"expected a timestamp, got {column.type}")
    try:
        return _to_utc(column)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        row = _first_failure(column, _to_utc)
        value = exc if row is None else repr(column[row].as_py())
        if _is_text(column.type):
            detail = f"not an ISO 8601 timestamp: {value}"
        else:  # a whole number of microseconds past int64, or a fraction of one
            value = exc if row is None else column.cast(pa.int64())[row].as_py()
            detail = (
                f"{value} ({column.type}) is not a whole number of microseconds inside "
                f"the accepted range {time_range()}"
            )
        raise InvalidBatch("recorded_at", _at(first_row, row), "timestamp", detail) from None


def _is_text(type_: pa.DataType) -> bool:
    # string_view is what Polars and newer Arrow writers send for text.
    return (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_string_view(type_)
    )


def _to_utc(column: pa.Array) -> pa.Array:
    target = pa.timestamp("us", "UTC")
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            column = pc.assume_timezone(column, "UTC")
        return column.cast(target)
    if pa.types.is_date(column.type):
        return column.cast(pa.timestamp("us")).cast(target)
    # Arrow reads ISO 8601 with a zone (Z or +hh:mm) into UTC. A value without a
    # zone is UTC by our contract, so it gets a "Z" (senders mix both in one batch).
    text = pc.replace_substring_regex(column.cast(pa.string()), r"^(\d{4}-\d\d-\d\d) ", r"\1T")
    has_zone = pc.match_substring_regex(text, r"(Z|[+-]\d\d:?\d\d)$")
    if not pc.all(pc.fill_null(has_zone, True)).as_py():
        is_date = pc.match_substring_regex(text, r"^\d{4}-\d\d-\d\d$")
        text = pc.if_else(
            has_zone,
            text,
            pc.if_else(
                is_date,
                pc.binary_join_element_wise(text, "T00:00:00Z", ""),
                pc.binary_join_element_wise(text, "Z", ""),
            ),
        )
    return text.cast(target)


def _first_failure(column: pa.Array, convert) -> int | None:
    """Error path only: the index of the first value that `convert` refuses."""
    for i in range(len(column)):
        try:
            convert(column.slice(i, 1))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i
    return None


def _at(first_row: int, row: int | None) -> int | None:
    return None if row is None else first_row + row


def _no_one_text_form(type_: pa.DataType) -> bool:
    return pa.types.is_floating(type_) or pa.types.is_decimal(type_) or pa.types.is_boolean(type_)


def _first_valid(column: pa.Array) -> int | None:
    found = pc.indices_nonzero(pc.is_valid(column))
    return found[0].as_py() if len(found) else None


def _require_text(column: pa.Array, name: str, first_row: int) -> None:
    blank = pc.equal(pc.utf8_trim_whitespace(column), "")
    found = pc.indices_nonzero(pc.fill_null(blank, False))
    if len(found):
        row = found[0].as_py()
        raise InvalidBatch(
            name, first_row + row, "not-empty", f"{column[row].as_py()!r} is blank; send a value"
        )


def _require_values(column: pa.Array, name: str, first_row: int) -> None:
    if column.null_count:
        row = pc.indices_nonzero(pc.is_null(column))[0].as_py()
        raise InvalidBatch(name, first_row + row, "not-null", "a value is required")


def _event_ids(
    given: pa.Array | None, out: dict[str, pa.Array], event_type: str = PAGEVIEW
) -> pa.Array:
    """The sender's event_id, else a key built from the event's content.

    Each part is length-prefixed ("7:session") and a null is "~", so no two
    different events share a key however their values mix separators. Other types
    than the page view add their type and properties (two API requests of one
    session in one microsecond differ by their properties, if at all); a page
    view's key is as it always was, so a resent page view still dedupes. Theirs is
    hashed (SHA-256): properties may be far longer than a key may be.
    """
    parts = [
        out["session_id"],
        out["page_url"],
        out["recorded_at"].cast(pa.int64()).cast(pa.string()),
        out["user_id"],
    ]
    head = "c"
    if event_type != PAGEVIEW:
        head = f"t{len(event_type)}:{event_type}"
        parts.append(out["properties"])
    content = pc.binary_join_element_wise(head, *map(_length_prefixed, parts), "|")
    if event_type != PAGEVIEW:
        content = _hashed(content)
    if given is None:
        return content
    return pc.coalesce(given, content)


def _hashed(content: pa.Array) -> pa.Array:
    digests = [hashlib.sha256(c.encode()).hexdigest() for c in content.to_pylist()]
    return pa.array([f"h{d}" for d in digests], pa.string())


def _length_prefixed(values: pa.Array) -> pa.Array:
    prefixed = pc.binary_join_element_wise(pc.utf8_length(values).cast(pa.string()), values, ":")
    return pc.fill_null(prefixed, "~")


def check_not_expired(
    events: pa.RecordBatch, expired: frozenset[dt.date], first_row: int = 0
) -> None:
    """Refuse events of days whose raw events retention deleted, naming the first one."""
    days = events.column("recorded_at").cast(pa.date32())
    hit = pc.is_in(days, value_set=pa.array(sorted(expired), pa.date32()))
    if pc.any(hit).as_py():
        row = pc.indices_nonzero(hit)[0].as_py()
        raise InvalidBatch(
            "recorded_at",
            first_row + row,
            "retention",
            f"the raw events of {days[row].as_py()} were deleted by retention; the day's "
            "aggregates are kept and final (raise --raw-retention-days to keep more)",
        )
