"""`GET /api/live/VIEW` as Server-Sent Events: the DoExchange subscription, message for message.

The subscription runs exactly as on DoExchange (live/exchange.py), on a thread
of its own, writing to a stand-in for Flight's writer that turns each message
into one SSE event: `event:` its `type` (any type, so new kinds pass through),
`data:` its JSON metadata with the rows as `"rows": [{…}, …]`, `id:` its cursor.
A browser's EventSource resends the last id as `Last-Event-ID` when it
reconnects, which resumes with no gap and no double. Snapshot rows carry an
empty `id:` (it clears the browser's last id): a connection lost mid-snapshot
has no complete table to resume from, so it reconnects to a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator

import pyarrow as pa
from flightdeck.views import BackendError
from starlette.requests import Request

from ..live.exchange import stream_subscription
from ..server import FlightdeckServer
from .call import HttpCall
from .errors import HttpError
from .formats import rows_json

__all__ = ["live_events", "subscription_command"]

_NO_RESUME = frozenset({"snapshot", "resync"})  # kinds after which the cursor is not yet whole
_QUEUE_EVENTS = 32  # events buffered toward one browser; the hub bounds the rest


def subscription_command(view: str, request: Request) -> bytes:
    """The DoExchange request for this URL: `where` is JSON, `columns` a comma list,
    `cursor` (or `Last-Event-ID`, which wins) resumes; any other parameter passes
    through as JSON (or text), so the live protocol's options need no change here."""
    body: dict[str, object] = {"subscribe": view}
    for name, value in request.query_params.multi_items():
        if name == "columns":
            body[name] = [c.strip() for c in value.split(",") if c.strip()]
        else:
            body[name] = _json_or_text(name, value)
    resume = request.headers.get("last-event-id", "").strip()
    if resume:
        body["cursor"] = _json_or_text("Last-Event-ID", resume)
    if body.get("cursor") is not None:
        body.setdefault("snapshot", False)  # a resume wants what it missed, not the table again
    return json.dumps(body).encode()


def _json_or_text(name: str, value: str) -> object:
    try:
        return json.loads(value)
    except ValueError:
        if name in ("where", "top", "cursor", "Last-Event-ID"):
            raise HttpError(400, f"{name} must be JSON, got {value!r}", name) from None
        return value


async def live_events(server: FlightdeckServer, command: bytes) -> AsyncIterator[bytes]:
    """The checks happen before the first byte (so a refusal gets its status); the
    returned events then flow until the client leaves or the server stops."""
    if server.hub is None:
        raise BackendError("nats", "live updates need NATS; none is connected", "unavailable")
    subscription, schema = server.live_schemas.parse(command)
    slot = contextlib.ExitStack()
    slot.enter_context(server.live_slots.take())
    call = HttpCall()
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE_EVENTS)
    writer = _EventWriter(call, loop, events, server.settings.stream_idle_timeout)

    def run() -> None:
        try:
            with slot:
                stream_subscription(
                    call,
                    server.store,
                    server.hub,
                    subscription,
                    schema,
                    writer,
                    server.settings.heartbeat,
                    server.settings.batch_rows,
                )
        except Exception as exc:  # the stream is open: an error can only be an event
            writer.error(exc)
        finally:
            writer.end()

    threading.Thread(target=run, name="http-live", daemon=True).start()
    return _drained(call, events)


async def _drained(call: HttpCall, events: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
    try:
        while (event := await events.get()) is not None:
            yield event
    finally:
        call.cancel()  # the subscription sees it within its poll and unregisters


class _EventWriter:
    """What stream_subscription writes to (a Flight MetadataRecordBatchWriter's
    methods), putting SSE events on the response's bounded queue."""

    def __init__(
        self,
        call: HttpCall,
        loop: asyncio.AbstractEventLoop,
        events: asyncio.Queue[bytes | None],
        stall_s: float,
    ) -> None:
        self._call = call
        self._loop = loop
        self._events = events
        self._stall_s = stall_s

    def begin(self, schema: pa.Schema) -> None:
        pass  # rows travel as JSON objects: the names are in every row

    def write_metadata(self, metadata: pa.Buffer) -> None:
        self._put(_event(json.loads(metadata.to_pybytes()), None))

    def write_with_metadata(self, batch: pa.RecordBatch, metadata: pa.Buffer) -> None:
        rows = rows_json(pa.Table.from_batches([batch]))
        self._put(_event(json.loads(metadata.to_pybytes()), rows))

    def error(self, exc: Exception) -> None:
        with contextlib.suppress(Exception):
            self._put(_event({"type": "error", "reason": str(exc)}, None))

    def end(self) -> None:
        with contextlib.suppress(Exception):
            self._put(None)

    def _put(self, event: bytes | None) -> None:
        """Waits while the browser is slow; one that takes nothing for `stall_s`
        seconds (--stream-idle-timeout) loses its subscription, alone."""
        if self._call.is_cancelled():
            raise ConnectionError("the client left the subscription")
        put = asyncio.run_coroutine_threadsafe(self._events.put(event), self._loop)
        try:
            put.result(self._stall_s)
        except Exception:
            put.cancel()
            self._call.cancel()
            raise ConnectionError("the client read nothing in time; subscription ended") from None


def _event(message: dict, rows: list[bytes] | None) -> bytes:
    kind = str(message.get("type", "message"))
    cursor = "" if kind in _NO_RESUME else str(message.get("cursor", ""))
    data = json.dumps(message).encode()
    if rows is not None:
        data = data[:-1] + b', "rows": [' + b",".join(rows) + b"]}"
    return b"event: " + kind.encode() + b"\nid: " + cursor.encode() + b"\ndata: " + data + b"\n\n"
