"""Many live subscriptions on one DoExchange stream (docs/live.md, "Multiplexed").

The client opens the stream with `{"multiplex": true}` and sends requests as
metadata-only messages: a subscription's JSON plus its `id`, or
`{"unsubscribe": id}`. The call's own thread reads those; one writer thread
serves every subscription of the stream (session.py), woken by the hub when
rows arrive, and sends each message as a frame tagged with its id
(`flightdeck.live_mux.encode_frame`). A bad request is answered with an
`error` for its id and the stream goes on. A client that stops reading stalls
only this stream's writer: its subscriptions fall behind in the hub's bounded
buffers and get `error` with their cursor, alone; ingest never waits.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections import deque
from collections.abc import Callable

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.live_mux import encode_frame, frame, ipc_body
from flightdeck.views import InvalidQuery

from ..limits import Slots
from .session import LiveSession
from .shared import derived

__all__ = ["Opener", "serve_multiplex"]

_POLL_S = 0.5  # how often a quiet stream checks heartbeats and whether its client left
# Frames joined into one Flight message up to this size (a single bigger frame goes
# alone: its rows are bounded by --batch-rows); well under gRPC's 4 MB default.
_MESSAGE_BYTES = 1 << 20

# Makes a session from a request (JSON without `id`), a writer and a wake-up.
Opener = Callable[[bytes, object, Callable[[], None]], LiveSession]


def serve_multiplex(
    context: flight.ServerCallContext,
    reader: flight.MetadataRecordBatchReader,
    writer: flight.MetadataRecordBatchWriter,
    open_session: Opener,
    slots: Slots,
    position: Callable[[], int],
) -> None:
    """Serve one multiplexed stream until the client leaves. `slots`: one per subscription
    (--max-subscribers counts subscriptions, not streams); `position`: the hub's cursor,
    for errors about requests that never became subscriptions."""
    stream = _Stream(context, writer, open_session, slots, position)
    serving = threading.Thread(target=stream.serve, name="live-mux", daemon=True)
    serving.start()
    try:
        while True:
            try:
                chunk = reader.read_chunk()
            except StopIteration:
                break  # the client sends no more requests; its subscriptions go on
            if chunk.app_metadata is not None:
                stream.requests.put(chunk.app_metadata.to_pybytes())
                stream.wake()
        while serving.is_alive() and not context.is_cancelled():
            serving.join(_POLL_S)
    finally:
        stream.stopping = True
        stream.wake()
        serving.join()


class _Stream:
    def __init__(self, context, writer, open_session: Opener, slots: Slots, position) -> None:
        self._context = context
        self._writer = writer
        self._open = open_session
        self._slots = slots
        self._position = position
        self.requests: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.stopping = False
        self._woken = threading.Event()
        self._sessions: dict[object, tuple[LiveSession, _Outbox, contextlib.ExitStack]] = {}

    def wake(self) -> None:
        self._woken.set()

    def serve(self) -> None:
        """The writer thread: requests, then every session's due messages, then wait."""
        try:
            while not self.stopping and not self._context.is_cancelled():
                self._woken.clear()
                self._take_requests()
                out = _Batch(self._writer)
                for id, (session, outbox, _) in list(self._sessions.items()):
                    alive = session.step()
                    out.add(outbox.frames)
                    if not alive:
                        self._end(id)
                out.flush()
                self._woken.wait(_POLL_S)
        except (flight.FlightError, pa.ArrowException, OSError):
            pass  # the client left mid-write: the call's thread sees it cancelled
        finally:
            for id in list(self._sessions):
                self._end(id)

    def _take_requests(self) -> None:
        while True:
            try:
                raw = self.requests.get_nowait()
            except queue.Empty:
                return
            id = None
            try:
                request = json.loads(raw)
                if not isinstance(request, dict):
                    raise InvalidQuery("a request must be a JSON object")
                if "unsubscribe" in request:
                    self._end(request["unsubscribe"])
                    continue
                id = request.pop("id", None)
                self._subscribe(id, request)
            except (InvalidQuery, ValueError, flight.FlightError) as exc:
                self._refuse(id, exc)

    def _subscribe(self, id, request: dict) -> None:
        if not isinstance(id, (str, int)) or isinstance(id, bool):
            raise InvalidQuery('each subscription needs an "id" (a string or an integer)')
        if id in self._sessions:
            raise InvalidQuery(f"id {id!r} is already subscribed on this stream")
        outbox = _Outbox(id)
        held = contextlib.ExitStack()
        held.enter_context(self._slots.take())
        try:
            session = self._open(json.dumps(request).encode(), outbox, self.wake)
        except BaseException:
            held.close()
            raise
        held.callback(session.close)
        self._sessions[id] = (session, outbox, held)

    def _end(self, id) -> None:
        entry = self._sessions.pop(id, None)
        if entry is not None:
            entry[2].close()

    def _refuse(self, id, exc: Exception) -> None:
        header = {"id": id, "type": "error", "cursor": self._position(), "reason": str(exc)}
        self._writer.write_metadata(pa.py_buffer(encode_frame(header, None)))


class _Batch:
    """Frames of one round over the sessions, sent as few Flight messages: a gRPC write
    each would cost a round of the transport per subscription (the benchmark saw
    seconds for a hundred)."""

    def __init__(self, writer) -> None:
        self._writer = writer
        self._frames: list[bytes] = []
        self._bytes = 0

    def add(self, frames: deque[bytes]) -> None:
        while frames:
            frame = frames.popleft()
            if self._bytes + len(frame) > _MESSAGE_BYTES:
                self.flush()
            self._frames.append(frame)
            self._bytes += len(frame)

    def flush(self) -> None:
        if self._frames:
            self._writer.write_metadata(pa.py_buffer(b"".join(self._frames)))
            self._frames, self._bytes = [], 0


class _Outbox:
    """A Flight writer's stand-in for one subscription: each message becomes a frame
    tagged with its id, kept until the stream's writer thread sends it."""

    def __init__(self, id) -> None:
        self._id = id
        self.frames: deque[bytes] = deque()

    def begin(self, schema: pa.Schema) -> None:
        pass  # each frame carries its rows' schema

    def write_metadata(self, metadata: pa.Buffer) -> None:
        self.frames.append(encode_frame(self._header(metadata), None))

    def write_with_metadata(self, batch: pa.RecordBatch, metadata: pa.Buffer) -> None:
        # A group's members send the same batch objects (exchange._Sender): encode once.
        body = derived(batch, "ipc", lambda: ipc_body(batch))
        self.frames.append(frame(self._header(metadata), body))

    def _header(self, metadata: pa.Buffer) -> dict:
        return {"id": self._id, **json.loads(metadata.to_pybytes())}
