"""NATS message payloads to event batches: JSON objects (the seed's shape) or Arrow IPC.

A fetched batch of messages becomes one Arrow batch of JSON events plus one per
Arrow message. A message that can never be ingested is set aside with the
reason, so the rest of the batch goes ahead without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from .errors import InvalidBatch
from .events import ALIASES, EVENT_SCHEMA, normalise

__all__ = ["ARROW_CONTENT_TYPE", "Decoded", "Payload", "Rejected", "decode"]

ARROW_CONTENT_TYPE = "application/vnd.apache.arrow.stream"
_IPC_CONTINUATION = b"\xff\xff\xff\xff"  # how every Arrow IPC stream starts

_TEXT = ("event_id", "session_id", "page_url", "recorded_at", "user_id", "referrer", "user_agent")
_REQUIRED = ("session_id", "page_url", "recorded_at")
_JSON_SCHEMA = pa.schema(
    [
        *((name, pa.string()) for name in _TEXT),
        ("duration_s", pa.float64()),
        ("properties", pa.string()),
    ]
)


@dataclass(frozen=True)
class Payload:
    data: bytes
    headers: Mapping[str, str] | None
    default_id: str  # event_id for an event that has none: derived from stream and sequence


@dataclass(frozen=True)
class Rejected:
    index: int  # the message's position in the decoded sequence
    reason: str


@dataclass
class Decoded:
    batches: list[pa.RecordBatch] = field(default_factory=list)  # normalised events
    owners: list[int] = field(default_factory=list)  # per row of `batches`: its message
    rejected: list[Rejected] = field(default_factory=list)

    def without(self, message: int, reason: str) -> Decoded:
        """The same, with `message`'s rows set aside as rejected."""
        keep = pa.array([owner != message for owner in self.owners])
        table = pa.Table.from_batches(self.batches, schema=EVENT_SCHEMA).filter(keep)
        owners = [owner for owner in self.owners if owner != message]
        rejected = [*self.rejected, Rejected(message, reason)]
        return Decoded(table.combine_chunks().to_batches() if owners else [], owners, rejected)


class _Unusable(ValueError):
    pass


def decode(payloads: Sequence[Payload]) -> Decoded:
    """Events from `payloads`; messages that can never be ingested are in `rejected`."""
    out = Decoded()
    rows: list[dict] = []
    owners: list[int] = []
    for index, payload in enumerate(payloads):
        try:
            if _is_arrow(payload):
                batches = _arrow_events(payload)
                out.batches += batches
                out.owners += [index] * sum(b.num_rows for b in batches)
            else:
                rows.append(_json_event(payload))
                owners.append(index)
        except _Unusable as exc:
            out.rejected.append(Rejected(index, str(exc)))
    out.batches += _json_events(rows, owners, out.rejected)
    out.owners += owners
    return out


def _unconvertible(rows: list[dict]) -> int:
    """Error path only: the first row Arrow cannot take (e.g. text with a lone surrogate)."""
    for i, row in enumerate(rows):
        try:
            pa.RecordBatch.from_pylist([row], schema=_JSON_SCHEMA)
        except (pa.ArrowException, ValueError, TypeError):
            return i
    return 0


def _is_arrow(payload: Payload) -> bool:
    content_type = (payload.headers or {}).get("Content-Type", "")
    return content_type == ARROW_CONTENT_TYPE or payload.data.startswith(_IPC_CONTINUATION)


def _arrow_events(payload: Payload) -> list[pa.RecordBatch]:
    try:
        batches = list(pa.ipc.open_stream(payload.data))
    except (pa.ArrowException, OSError) as exc:
        raise _Unusable(f"not an Arrow IPC stream: {exc}") from None
    out, first = [], 0
    for batch in batches:
        if "event_id" not in batch.schema.names:
            ids = [f"{payload.default_id}:{first + i}" for i in range(batch.num_rows)]
            batch = batch.append_column("event_id", pa.array(ids, pa.string()))
        try:
            out.append(normalise(batch, first_row=first))
        except InvalidBatch as exc:
            raise _Unusable(str(exc)) from None
        except (pa.ArrowException, ValueError, TypeError) as exc:  # a type no rule foresaw
            raise _Unusable(f"unusable Arrow data: {exc}") from None
        first += batch.num_rows
    return out


def _json_event(payload: Payload) -> dict:
    try:
        obj = json.loads(payload.data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Unusable(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Unusable(f"not a JSON object but {type(obj).__name__}")
    row = {ALIASES.get(k, k): v for k, v in obj.items() if k in ALIASES}
    row.update((k, v) for k, v in obj.items() if k not in ALIASES)
    event = {name: _text(row, name) for name in _TEXT}
    for name in _REQUIRED:
        if event[name] is None:
            raise _Unusable(f"missing {name!r} (required)")
    event["event_id"] = event["event_id"] or payload.default_id
    event["duration_s"] = _number(row, "duration_s")
    properties = row.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise _Unusable(f"'properties' must be a JSON object, not {type(properties).__name__}")
    event["properties"] = None if properties is None else json.dumps(properties)
    return event


def _text(row: dict, name: str) -> str | None:
    value = row.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and name != "recorded_at":
        return str(value)  # user and session ids arrive as numbers too
    raise _Unusable(f"{name!r} must be a string, not {type(value).__name__}")


def _number(row: dict, name: str) -> float | None:
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise _Unusable(f"{name!r} is out of range for a float") from None
    raise _Unusable(f"{name!r} must be a number, not {type(value).__name__}")


def _json_events(
    rows: list[dict], owners: list[int], rejected: list[Rejected]
) -> list[pa.RecordBatch]:
    """One batch of all JSON events; a row the checks refuse is rejected and dropped.

    `rows` and `owners` are trimmed in place to match what is returned.
    """
    while rows:
        try:
            batch = pa.RecordBatch.from_pylist(rows, schema=_JSON_SCHEMA)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            bad = _unconvertible(rows)
            rejected.append(Rejected(owners[bad], f"not convertible to Arrow: {exc}"))
            del rows[bad], owners[bad]
            continue
        try:
            return [normalise(batch)]
        except InvalidBatch as exc:
            bad = exc.row if exc.row is not None else 0  # batch-wide: one at a time
            rejected.append(Rejected(owners[bad], f"[{exc.rule}] {exc.column}: {exc.detail}"))
            del rows[bad], owners[bad]
    return []
