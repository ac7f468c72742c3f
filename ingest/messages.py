"""NATS message payloads to event batches: JSON objects (the seed's shape) or Arrow IPC.

A fetched batch of messages becomes one Arrow batch of JSON events (read in
bulk: `json_events.py`) plus one per Arrow message. A message that can never be
ingested is set aside with the reason, so the rest of the batch goes ahead
without it.

Sizes are counted decoded, before decoding: an Arrow message's from its IPC
metadata (`ipc_size.py`; a compressed one can be thousands of times its wire
size), a JSON message's as its length. A message over the per-message limit is
set aside; the batch stops before the message that would take it over the
per-batch limit, and the caller decodes the rest as the next batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import pyarrow as pa

from .errors import InvalidBatch
from .event_types import PAGEVIEW
from .events import EVENT_SCHEMA, normalise
from .ipc_size import OverLimit, decoded_size
from .json_events import decode_json

__all__ = ["ARROW_CONTENT_TYPE", "Decoded", "Limits", "Payload", "Rejected", "decode"]

ARROW_CONTENT_TYPE = "application/vnd.apache.arrow.stream"
_IPC_CONTINUATION = b"\xff\xff\xff\xff"  # how every Arrow IPC stream starts


class Payload(NamedTuple):  # one per message: a tuple is made in a fraction of a dataclass's time
    data: bytes
    headers: Mapping[str, str] | None
    default_id: str  # event_id for an event that has none: derived from stream and sequence


@dataclass(frozen=True)
class Limits:
    message_bytes: int  # one message, decoded (--max-message-mb)
    batch_bytes: int  # the messages decoded together for one commit (--ingest-batch-mb)


@dataclass(frozen=True)
class Rejected:
    index: int  # the message's position in the decoded sequence
    reason: str


@dataclass
class Decoded:
    batches: list[pa.RecordBatch] = field(default_factory=list)  # normalised events
    owners: list[int] = field(default_factory=list)  # per row of `batches`: its message
    rejected: list[Rejected] = field(default_factory=list)
    taken: int = 0  # how many of the payloads given were decoded; the rest are for later
    event_type: str = PAGEVIEW  # of every event here: one commit is of one type

    def add(self, alone: Decoded, message: int) -> None:
        """Take in `alone`, one message decoded on its own, as message `message` of this."""
        self.batches += alone.batches
        self.owners += [message] * len(alone.owners)
        self.rejected += [Rejected(message, r.reason) for r in alone.rejected]
        self.taken = message + 1

    def without(self, message: int, reason: str) -> Decoded:
        """The same, with `message`'s rows set aside as rejected."""
        kept = self.only(set(self.owners) - {message})
        rejected = [*self.rejected, Rejected(message, reason)]
        return Decoded(kept.batches, kept.owners, rejected, kept.taken, self.event_type)

    def only(self, messages: set[int]) -> Decoded:
        """The rows of `messages` alone (nothing rejected: a subset to try)."""
        keep = pa.array([owner in messages for owner in self.owners], pa.bool_())
        # Typed events have page_url optional (TYPED_SCHEMA): the schema the rows came in.
        schema = self.batches[0].schema if self.batches else EVENT_SCHEMA
        table = pa.Table.from_batches(self.batches, schema=schema).filter(keep)
        owners = [owner for owner in self.owners if owner in messages]
        batches = table.combine_chunks().to_batches() if owners else []
        return Decoded(batches, owners, [], self.taken, self.event_type)


class _Unusable(ValueError):
    pass


def decode(payloads: Sequence[Payload], limits: Limits, event_type: str = PAGEVIEW) -> Decoded:
    """Events of `event_type` from the first `taken` of `payloads`, as many as fit
    `limits.batch_bytes` decoded (at least one); messages that can never be ingested
    are in `rejected`."""
    out = Decoded(event_type=event_type)
    json_messages: list[int] = []
    used = 0
    for index, payload in enumerate(payloads):
        arrow = _is_arrow(payload)
        try:
            size = _size(payload, arrow, limits)
        except _Unusable as exc:
            out.rejected.append(Rejected(index, str(exc)))
            out.taken = index + 1
            continue
        if used and used + size > limits.batch_bytes:
            break
        used += size
        out.taken = index + 1
        if not arrow:
            json_messages.append(index)
            continue
        try:
            batches = _arrow_events(payload, event_type)
        except _Unusable as exc:
            out.rejected.append(Rejected(index, str(exc)))
            continue
        out.batches += batches
        out.owners += [index] * sum(b.num_rows for b in batches)
    if json_messages:
        found = decode_json(
            [payloads[i].data for i in json_messages],
            [payloads[i].default_id for i in json_messages],
            event_type,
        )
        if found.batch is not None:
            out.batches.append(found.batch)
            out.owners += [json_messages[row] for row in found.rows]
        out.rejected += [Rejected(json_messages[i], reason) for i, reason in found.rejected]
    return out


def _size(payload: Payload, arrow: bool, limits: Limits) -> int:
    """The payload's decoded size, or _Unusable when it is over the per-message limit."""
    try:
        size = decoded_size(pa.py_buffer(payload.data), limits.message_bytes) if arrow else None
    except OverLimit as exc:
        size = exc.found
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _Unusable(f"not an Arrow IPC stream: {exc}") from None
    if size is None:
        size = len(payload.data)  # JSON: Arrow holds about what the text does
    if size > limits.message_bytes:
        raise _Unusable(
            f"[payload-size] the message decodes to {'at least ' if arrow else ''}"
            f"{size / 2**20:.1f} MB, over the limit of {limits.message_bytes / 2**20:g} MB "
            "(--max-message-mb); send smaller messages"
        )
    return size


def _is_arrow(payload: Payload) -> bool:
    content_type = (payload.headers or {}).get("Content-Type", "")
    return content_type == ARROW_CONTENT_TYPE or payload.data.startswith(_IPC_CONTINUATION)


def _arrow_events(payload: Payload, event_type: str) -> list[pa.RecordBatch]:
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
            out.append(normalise(batch, first_row=first, event_type=event_type))
        except InvalidBatch as exc:
            raise _Unusable(str(exc)) from None
        except (pa.ArrowException, ValueError, TypeError) as exc:  # a type no rule foresaw
            raise _Unusable(f"unusable Arrow data: {exc}") from None
        first += batch.num_rows
    return out
