"""`GET /api/live/VIEW` as Server-Sent Events: the DoExchange subscription, message for message.

The subscription runs as a live session (live/session.py: the DoExchange rules,
stepped without a thread of its own) on the response's event loop, woken by the
hub, writing to a stand-in for Flight's writer that turns each message into one
SSE event: `event:` its `type` (any type, so new kinds pass through),
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
from collections import deque
from collections.abc import AsyncIterator

import anyio.to_thread
import pyarrow as pa
from flightdeck.views import BackendError
from starlette.requests import Request

from ..live.session import LiveSession
from ..server import FlightdeckServer
from .errors import HttpError
from .formats import rows_json

__all__ = ["live_events", "subscription_command"]

_NO_RESUME = frozenset({"snapshot", "resync"})  # kinds after which the cursor is not yet whole
_POLL_S = 0.5  # a quiet subscription's step for heartbeats


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
    slot = contextlib.ExitStack()
    slot.enter_context(server.live_slots.take())
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    events = _Events()
    try:
        session = server.live_session(command, events, lambda: loop.call_soon_threadsafe(wake.set))
    except BaseException:
        slot.close()
        raise
    slot.callback(session.close)
    stall_s = server.settings.stream_idle_timeout
    return _produced(session, events, wake, slot, stall_s)


async def _produced(
    session: LiveSession,
    events: _Events,
    wake: asyncio.Event,
    slot: contextlib.ExitStack,
    stall_s: float,
) -> AsyncIterator[bytes]:
    """The session's events, stepped on this event loop when the hub wakes it (and each
    poll, for heartbeats): no thread per subscription. Only a top-N's refresh reads the
    store; it steps on a worker thread. A browser that takes nothing for `stall_s`
    (--stream-idle-timeout) loses its subscription and slot at once, alone; the stream
    then ends when it reads again, and EventSource resumes from its last id."""
    loop = asyncio.get_running_loop()
    with slot:
        while True:
            wake.clear()
            if session.blocking:
                alive = await anyio.to_thread.run_sync(session.step)
            else:
                alive = session.step()
            while events.queue:
                retire = loop.call_later(stall_s, slot.close)
                try:
                    yield events.queue.popleft()
                finally:
                    retire.cancel()
            if not alive:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), _POLL_S)


class _Events:
    """What a live session writes to (a Flight MetadataRecordBatchWriter's methods):
    each message becomes one SSE event, kept until the response sends it. The session
    adds only what one step (or its start) makes; the hub's Pending bounds the rest."""

    def __init__(self) -> None:
        self.queue: deque[bytes] = deque()

    def begin(self, schema: pa.Schema) -> None:
        pass  # rows travel as JSON objects: the names are in every row

    def write_metadata(self, metadata: pa.Buffer) -> None:
        self.queue.append(_event(json.loads(metadata.to_pybytes()), None))

    def write_with_metadata(self, batch: pa.RecordBatch, metadata: pa.Buffer) -> None:
        rows = rows_json(pa.Table.from_batches([batch]))
        self.queue.append(_event(json.loads(metadata.to_pybytes()), rows))


def _event(message: dict, rows: list[bytes] | None) -> bytes:
    kind = str(message.get("type", "message"))
    cursor = "" if kind in _NO_RESUME else str(message.get("cursor", ""))
    data = json.dumps(message).encode()
    if rows is not None:
        data = data[:-1] + b', "rows": [' + b",".join(rows) + b"]}"
    return b"event: " + kind.encode() + b"\nid: " + cursor.encode() + b"\ndata: " + data + b"\n\n"
