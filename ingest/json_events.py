"""JSON events of one type to one Arrow batch: read in bulk by Arrow, one by one where needed.

Arrow's JSON reader parses a fetched batch of messages in one call, in C++;
`json.loads` and a dict per message cost about 9 µs each in Python. The bulk
path takes only what the per-message path would accept with the same values
(strict UTF-8, one JSON object per message, text fields as strings or integers),
so a message's fate never depends on its neighbours. A chunk the reader refuses
is halved until the trouble is isolated; the few messages left over, and events
missing a required field, go through `json.loads` one at a time, which names
the reason for a dead letter.

Events of other types than `pageview` keep the keys beyond the core in
`properties` (as DoPut keeps extra columns, extra_columns.py): a message with such
keys goes one by one, where json.loads gives them exactly as sent; the bulk
reader's inferred types would not. Page views ignore them, as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .errors import InvalidBatch
from .event_types import PAGEVIEW
from .events import ALIASES, REQUIRED, TYPED_REQUIRED, normalise

__all__ = ["JsonEvents", "decode_json"]

_TEXT = ("event_id", "session_id", "page_url", "recorded_at", "user_id", "referrer", "user_agent")
_SCHEMA = pa.schema(  # a JSON event before `normalise`
    [
        *((name, pa.string()) for name in _TEXT),
        ("duration_s", pa.float64()),
        ("properties", pa.string()),
    ]
)
# orjson reads an integer of 19 digits or more as a float, silently; json.loads keeps
# it. Found by mapping digits to "0" and the rest to " " (a regex costs 4x orjson).
_DIGITS_ONLY = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_DIGITS = b"0" * 19
# Per row: `properties` is json.dumps text that needs no JSON check (`_dumped_clean`).
_CHECKED = "json_checked"
_CARRIED = _SCHEMA.append(pa.field(_CHECKED, pa.bool_()))
_NAMES_OF = {name: (name, *(a for a, c in ALIASES.items() if c == name)) for name in _TEXT}
# Keys that are no extra: the core, the senders' aliases, and the type (the subject's).
_CORE_KEYS = frozenset({*_SCHEMA.names, *ALIASES, "event_type"})
# Declared rather than inferred: Arrow would read ISO text as timestamps, and
# `recorded_at` must stay the text the sender wrote until `normalise` parses it.
_DECLARED = pa.schema(
    [
        *((name, pa.string()) for name in _NAMES_OF["recorded_at"]),
        ("duration_s", pa.float64()),
    ]
)
_PARSE = pj.ParseOptions(explicit_schema=_DECLARED, unexpected_field_behavior="infer")
_SMALLEST = 32  # a failing chunk this small is decoded message by message
# Arrow's JSON reader recurses once per level of nesting and overflows the stack,
# killing the process, near 20,000 levels (a 40 kB message). Brackets bound the
# depth; a message with more than this goes to json.loads, which raises instead.
_BULK_BRACKETS = 64


@dataclass
class JsonEvents:
    batch: pa.RecordBatch | None = None  # normalised events
    rows: list[int] = field(default_factory=list)  # per row of `batch`: its message's index
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (message index, reason)


class _Unusable(ValueError):
    pass


def decode_json(
    datas: Sequence[bytes], default_ids: Sequence[str], event_type: str = PAGEVIEW
) -> JsonEvents:
    """Events of `event_type` from JSON messages; `default_ids[i]` is message i's
    event_id if it has none."""
    tables: list[pa.Table] = []
    owners: list[int] = []
    # Arrow reads what starts with "{" and ends with "}" and nests shallowly; the
    # rest (a BOM, blanks, not an object at all, deep nesting) json.loads judges.
    # Such ends also keep two messages from reading as one object across the
    # newline that joins them.
    whole = [d[:1] == b"{" and d[-1:] == b"}" and _shallow(d) for d in datas]
    single = [i for i, ok in enumerate(whole) if not ok]
    bulk = [i for i, ok in enumerate(whole) if ok]
    _read(bulk, datas, default_ids, event_type, tables, owners, single)
    out = JsonEvents()
    table, decoded = _one_by_one(sorted(single), datas, default_ids, event_type, out.rejected)
    if decoded:
        tables.append(table)
        owners += decoded
    if tables:
        # Arrival order, so that of two events with one event_id the first sent wins.
        order = pc.sort_indices(pa.array(owners, pa.int64()))
        events = pa.concat_tables(tables).take(order).combine_chunks()
        out.rows = sorted(owners)
        out.batch = _normalised(events, out.rows, out.rejected, datas, event_type)
    return out


def _shallow(data: bytes) -> bool:
    return data.count(b"{") + data.count(b"[") <= _BULK_BRACKETS


def _read(
    chunk: list[int],
    datas: Sequence[bytes],
    ids: Sequence[str],
    event_type: str,
    tables: list[pa.Table],
    rows: list[int],
    single: list[int],
) -> None:
    """Read `chunk` (message indices) in bulk, halving it where the reader refuses."""
    if not chunk:
        return
    texts = [datas[i] for i in chunk]
    read = _parse(texts)
    events = None if read is None else _events(read, texts, [ids[i] for i in chunk], event_type)
    if events is None:
        if len(chunk) <= _SMALLEST:
            single += chunk
            return
        middle = len(chunk) // 2
        _read(chunk[:middle], datas, ids, event_type, tables, rows, single)
        _read(chunk[middle:], datas, ids, event_type, tables, rows, single)
        return
    table, aside = events
    if not pc.any(aside).as_py():
        tables.append(table)
        rows += chunk
        return
    tables.append(table.filter(pc.invert(aside)))
    for i, one_by_one in zip(chunk, aside.to_pylist(), strict=True):
        (single if one_by_one else rows).append(i)


def _parse(datas: list[bytes]) -> pa.Table | None:
    """One row per message, or None when Arrow's reader cannot vouch for every one."""
    data = b"\n".join(datas)
    try:
        # Arrow lets invalid UTF-8 through in fields it infers; json.loads would not.
        data.decode("utf-8")
        read = pj.read_json(
            pa.BufferReader(data),
            # One block: a message with a newline inside must not be cut in two.
            read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=_PARSE,
        )
    except (pa.ArrowException, ValueError):
        return None
    return read if read.num_rows == len(datas) else None  # e.g. two objects in one message


def _events(
    read: pa.Table, datas: list[bytes], ids: list[str], event_type: str
) -> tuple[pa.Table, pa.ChunkedArray] | None:
    """`read` in `_SCHEMA`, and which rows to decode one by one (a required field is
    missing, `properties` is not an object, or an event of another type than
    `pageview` has keys beyond the core): None when a column's type rules the bulk
    path out (a float or a boolean where text belongs, say)."""
    columns: dict[str, pa.ChunkedArray] = {}
    for name in _TEXT:
        values = [_as_text(read.column(n)) for n in _NAMES_OF[name] if n in read.column_names]
        if any(v is None for v in values):
            return None
        # A sender's own name wins over its alias unless it is null.
        columns[name] = pc.coalesce(*values) if values else pa.nulls(read.num_rows, pa.string())
    given = columns["event_id"]
    has_id = pc.fill_null(pc.not_equal(given, ""), False)
    columns["event_id"] = pc.if_else(has_id, given, pa.array(ids, pa.string()))
    columns["duration_s"] = read.column("duration_s")
    columns["properties"], odd, columns[_CHECKED] = _properties(read, datas)
    aside = odd
    for name in _required(event_type):
        aside = pc.or_(aside, pc.is_null(columns[name]))
    if event_type != PAGEVIEW:
        for name in read.column_names:
            if name not in _CORE_KEYS:
                aside = pc.or_(aside, pc.is_valid(read.column(name)))
    return pa.table([columns[n] for n in _CARRIED.names], schema=_CARRIED), aside


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Text as sent; integers as their digits (ids arrive as numbers); else None."""
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_int64(column.type) or pa.types.is_null(column.type):
        return column.cast(pa.string())
    return None


def _properties(read: pa.Table, datas: list[bytes]) -> tuple[pa.Array, pa.Array, pa.Array]:
    """`properties` as JSON text, the rows whose value is not an object, and the rows
    whose text needs no JSON check in `normalise` (`_dumped_clean`).

    Arrow keeps an object as a struct, which cannot give back the text; json.dumps
    of json.loads gives exactly what the per-message path stores.
    """
    n = read.num_rows
    nothing = pa.array([False] * n)
    if "properties" not in read.column_names:
        return pa.nulls(n, pa.string()), nothing, nothing
    column = read.column("properties")
    present = pc.is_valid(column)
    if not pa.types.is_struct(column.type):
        return pa.nulls(n, pa.string()), present, nothing
    texts: list[str | None] = [None] * n
    clean = [False] * n
    for i in pc.indices_nonzero(present).to_pylist():
        texts[i] = text = json.dumps(_loads(datas[i])["properties"])
        clean[i] = _dumped_clean(text)
    return pa.array(texts, pa.string()), nothing, pa.array(clean, pa.bool_())


def _loads(data: bytes) -> dict:
    """json.loads(data), for a message Arrow has read as an object: orjson where it
    gives the same values (a fifth of the time), json.loads where it refuses what
    json.loads reads (NaN, Infinity, 1e400, a lone surrogate) or could round."""
    if _LONG_DIGITS not in data.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def _dumped_clean(text: str) -> bool:
    """Whether json.dumps text (ASCII, every non-ASCII character escaped) passes
    `normalise`'s JSON check without parsing it again: it is JSON by construction
    unless a number was not finite (NaN, Infinity), and holds no lone surrogate
    unless it has a \\ud escape. A string that merely contains these is checked anyway."""
    return "NaN" not in text and "Infinity" not in text and "\\ud" not in text


def _required(event_type: str) -> tuple[str, ...]:
    return REQUIRED if event_type == PAGEVIEW else TYPED_REQUIRED


def _json_event(data: bytes, default_id: str, event_type: str) -> dict:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Unusable(f"not JSON: {exc}") from None
    except RecursionError:
        raise _Unusable("not JSON that can be read back: nested too deeply") from None
    if not isinstance(obj, dict):
        raise _Unusable(f"not a JSON object but {type(obj).__name__}")
    event = {name: _text(_value(obj, name), name) for name in _TEXT}
    for name in _required(event_type):
        if event[name] is None:
            raise _Unusable(f"missing {name!r} (required)")
    event["event_id"] = event["event_id"] or default_id
    event["duration_s"] = _number(obj.get("duration_s"), "duration_s")
    event["properties"] = _properties_text(obj.get("properties"))
    extras = {} if event_type == PAGEVIEW else _extras(obj)
    if extras:
        event["properties"] = _with_extras(event["properties"], extras)
    return event


def _extras(obj: dict) -> dict:
    """The keys beyond the core, nulls left out (as extra_columns.py leaves them)."""
    return {k: v for k, v in obj.items() if k not in _CORE_KEYS and v is not None}


def _with_extras(properties: str | None, extras: dict) -> str:
    """`properties` with `extras` merged in; on a clash the sender's own property
    wins (extra_columns.py gives the same rule and the same words)."""
    try:
        own = json.loads(properties) if properties is not None else {}
    except (ValueError, RecursionError):
        own = None  # normalise names the fault when there are no extras; here, this:
    if not isinstance(own, dict):
        raise _Unusable(
            f"[json-object] properties: extra keys ({', '.join(sorted(extras))}) are kept "
            "in properties, which must then be a JSON object"
        )
    return json.dumps({**extras, **own})


def _properties_text(properties: object) -> str | None:
    """An object as JSON text; text as sent, judged by the rule DoPut's text meets
    (events.py, `_check_json`): the README promises JSON text on both paths."""
    if properties is None or isinstance(properties, str):
        return properties
    if isinstance(properties, dict):
        return json.dumps(properties)
    raise _Unusable(
        f"[type] properties: send a JSON object or JSON text, not {type(properties).__name__}"
    )


def _value(obj: dict, name: str) -> object:
    """The value under our name, else under an alias (the seed sends `timestamp`)."""
    for key in _NAMES_OF[name]:
        if obj.get(key) is not None:
            return obj[key]
    return None


_NOT_TEXT = "send text (ids may be integers),"


def _text(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and name != "recorded_at":
        return str(value)  # user and session ids arrive as numbers too
    # The rule and words DoPut gives the same value (events.py, _cast).
    raise _Unusable(f"[type] {name}: {_NOT_TEXT} not {type(value).__name__}")


def _number(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise _Unusable(f"{name!r} is out of range for a float") from None
    raise _Unusable(f"{name!r} must be a number, not {type(value).__name__}")


def _one_by_one(
    indices: list[int],
    datas: Sequence[bytes],
    ids: Sequence[str],
    event_type: str,
    rejected: list,
) -> tuple[pa.Table | None, list[int]]:
    """The messages at `indices` through json.loads; the unusable ones are rejected."""
    rows, owners = [], []
    for i in indices:
        try:
            rows.append(_json_event(datas[i], ids[i], event_type))
            owners.append(i)
        except _Unusable as exc:
            rejected.append((i, str(exc)))
    while rows:
        try:
            return pa.Table.from_pylist(rows, schema=_CARRIED), owners
        except (pa.ArrowException, ValueError, TypeError) as exc:
            bad = _unconvertible(rows)
            rejected.append((owners[bad], f"not convertible to Arrow: {exc}"))
            del rows[bad], owners[bad]
    return None, []


def _senders_name(column: str | None, data: bytes) -> str | None:
    """The key the message used for `column` (`timestamp` for `recorded_at`, say):
    a dead letter's reason is read by whoever wrote the message."""
    if column not in _NAMES_OF:
        return column
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return column
    return next((key for key in _NAMES_OF[column] if obj.get(key) is not None), column)


def _unconvertible(rows: list[dict]) -> int:
    """Error path only: the first row Arrow cannot take (e.g. text with a lone surrogate)."""
    for i, row in enumerate(rows):
        try:
            pa.Table.from_pylist([row], schema=_SCHEMA)
        except (pa.ArrowException, ValueError, TypeError):
            return i
    return 0


def _normalised(
    events: pa.Table,
    owners: list[int],
    rejected: list[tuple[int, str]],
    datas: Sequence[bytes],
    event_type: str,
) -> pa.RecordBatch | None:
    """`events` normalised; a row the checks refuse is rejected and dropped (from
    `owners` too), then the rest is checked again."""
    while events.num_rows:
        batch = events.to_batches()[0]
        checked = pc.fill_null(batch.column(_CHECKED), False)
        try:
            return normalise(
                batch.drop_columns([_CHECKED]), json_checked=checked, event_type=event_type
            )
        except InvalidBatch as exc:
            bad = exc.row if exc.row is not None else 0  # batch-wide: one at a time
            column = _senders_name(exc.column, datas[owners[bad]])
            rejected.append((owners[bad], f"[{exc.rule}] {column}: {exc.detail}"))
            del owners[bad]
            events = pa.concat_tables([events.slice(0, bad), events.slice(bad + 1)])
            events = events.combine_chunks()
    return None
