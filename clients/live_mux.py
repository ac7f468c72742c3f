"""Many live subscriptions on one DoExchange stream (docs/live.md, "Multiplexed").

Open one with `Client.multiplex()`; `subscribe` as often as you like (each gets
an id of yours), iterate to get every subscription's messages, tagged with it.
One DoExchange stream has one schema, so messages travel as metadata only: a
Flight message's `app_metadata` holds one or more frames (`encode_frame`), each
a JSON header and the Arrow IPC stream of its rows, whatever their columns.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import struct
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.flight as flight

from .live_request import live_request

__all__ = ["LiveMessage", "Multiplex", "decode_frames", "encode_frame", "frame", "ipc_body"]

_LENGTHS = struct.Struct(">II")  # a frame's JSON header and Arrow IPC body lengths


def encode_frame(header: dict[str, Any], rows: pa.Table | pa.RecordBatch | None) -> bytes:
    """One message: the lengths of its header and body (two 4-byte big-endian numbers),
    the header as JSON, then (when there are rows) the Arrow IPC stream of `rows`.
    Frames are self-delimiting: one Flight message may carry several back to back."""
    return frame(header, b"" if rows is None else ipc_body(rows))


def ipc_body(rows: pa.Table | pa.RecordBatch) -> bytes:
    """A frame's body: `rows` as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as ipc:
        ipc.write(rows)
    return sink.getvalue().to_pybytes()


def frame(header: dict[str, Any], body: bytes) -> bytes:
    """A frame of `header` and an already encoded body (`ipc_body`, or empty)."""
    head = json.dumps(header).encode()
    return _LENGTHS.pack(len(head), len(body)) + head + body


def decode_frames(data: bytes | pa.Buffer) -> Iterator[tuple[dict[str, Any], pa.Table | None]]:
    """The header and rows (None when a message carries none) of each frame in `data`."""
    view = memoryview(data.to_pybytes() if isinstance(data, pa.Buffer) else data)
    at = 0
    while at < len(view):
        head, body = _LENGTHS.unpack_from(view, at)
        at += _LENGTHS.size
        header = json.loads(bytes(view[at : at + head]))
        at += head
        rows = pa.ipc.open_stream(pa.py_buffer(view[at : at + body])).read_all() if body else None
        at += body
        yield header, rows


class LiveMessage(NamedTuple):
    id: str
    kind: str  # snapshot, snapshot_end, update/upsert, remove, heartbeat, resync, error
    table: pa.Table | None
    cursor: int | None
    detail: dict[str, Any]  # the whole header: lifetime, reason, ...


class Multiplex:
    """One multiplexed DoExchange: `subscribe`, `unsubscribe`, iterate for messages.
    `subscribe` and `unsubscribe` may be called from another thread than the one
    iterating."""

    def __init__(
        self, writer: flight.FlightStreamWriter, reader: flight.FlightStreamReader
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._lock = threading.Lock()  # one request written at a time
        self._ids = (f"s{n}" for n in itertools.count(1))
        self._unread: deque[tuple[dict[str, Any], pa.Table | None]] = deque()

    def subscribe(self, view: str, *, id: str | None = None, **options: Any) -> str:
        """Follow `view` (options as `Client.subscribe` takes them); its id."""
        request = live_request(view, **options)
        request["id"] = id if id is not None else next(self._ids)
        self._send(request)
        return request["id"]

    def unsubscribe(self, id: str) -> None:
        """Stop one subscription; the others go on."""
        self._send({"unsubscribe": id})

    def __iter__(self) -> Iterator[LiveMessage]:
        return self

    def __next__(self) -> LiveMessage:
        # One Flight message carries many frames: those not yet returned stay here, so
        # a loop left early and a later loop over the stream see every message.
        while not self._unread:
            try:
                chunk = self._reader.read_chunk()
            except StopIteration:
                raise StopIteration from None
            if chunk.app_metadata is not None:
                self._unread.extend(decode_frames(chunk.app_metadata))
        header, table = self._unread.popleft()
        return LiveMessage(
            header.get("id"), header.get("type"), table, header.get("cursor"), header
        )

    def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(flight.FlightCancelledError):
            self._writer.close()

    def __enter__(self) -> Multiplex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, request: dict[str, Any]) -> None:
        with self._lock:
            self._writer.write_metadata(pa.py_buffer(json.dumps(request).encode()))
