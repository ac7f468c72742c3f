"""Which NATS message a worker was handling alone when it went away, kept in JetStream.

JetStream counts deliveries, but a delivery count cannot tell the message that
killed a worker (an out-of-memory kill, a crash in a native library) from the
neighbours it held at the time: all come back with one more delivery. So a
message a worker died holding is handled on its own (decoded, or at the last
decoded and committed) with a marker written to a key-value bucket first and
removed after. A marker still there at the next delivery means a worker died
handling that message and nothing else; the marker counts such deaths, and a
message is to blame once it has `BLAME` of them (a worker killed from outside
at a random moment may once happen to be handling an innocent message alone).
The bucket is shared by every worker on the stream, as the consumer is.

Handling each one alone costs three round trips a message: after a plain crash
with 2,000 messages in hand, a loaded machine spent half a minute on them before
its first commit. So messages a worker died holding are first handled together,
each marked "group" (the marks written and removed all at once); only those a
worker also went away handling together (still marked at the next delivery) are
then handled alone. A message that kills every worker is thus handled alone one
delivery later than before, and is still blamed within --max-deliveries.
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from .streams import StreamIdentity, ensure_stream

__all__ = ["BLAME", "Attempts"]

log = logging.getLogger("flightdeck.ingest-worker")

BUCKET = "flightdeck-ingest-attempts"
# Deaths while handling a message alone that make it the culprit. One could be
# chance (a worker killed for another reason while that message was in hand);
# a message that kills every worker handling it does so again at once.
BLAME = 2
_WEEK = 7 * 24 * 3600.0  # as long as EVENTS keeps its messages
_GROUP = b"group"  # the value of a marker `begin_group` wrote


class Attempts:
    def __init__(self, js: JetStreamContext, replicas: int | None = None) -> None:
        """`replicas`: the bucket's, as the EVENTS stream's (None: as it is, else 1)."""
        self._js = js
        self._replicas = replicas
        self._stream: StreamIdentity | None = None
        self._kv: KeyValue | None = None
        self.durable = False  # False: the bucket is out of reach (NATS permissions)

    async def open(self, stream: StreamIdentity) -> Attempts:
        """Markers for messages of `stream`: one left from a stream since made anew
        must not blame the new message with its sequence."""
        self._stream = stream
        try:
            try:
                self._kv = await self._js.key_value(BUCKET)
                # A bucket is a stream: one made before the cluster grew moves as EVENTS does.
                await ensure_stream(
                    self._js, StreamConfig(f"KV_{BUCKET}", num_replicas=self._replicas)
                )
            except BucketNotFoundError:
                config = KeyValueConfig(
                    bucket=BUCKET,
                    history=1,
                    ttl=_WEEK,
                    storage=StorageType.FILE,
                    replicas=self._replicas or 1,
                )
                self._kv = await self._js.create_key_value(config)
            self.durable = True
        except Exception as exc:  # e.g. credentials that may not create streams
            log.warning(
                "no key-value bucket %s (error=%r): a message redelivered past "
                "--max-deliveries is dead-lettered on its count alone",
                BUCKET,
                exc,
            )
        return self

    async def died_handling(self, sequence: int) -> int:
        """How many workers went away while handling this message alone, at least
        (a worker's death is counted when the next one begins handling it)."""
        if self._kv is None:
            return BLAME  # no way to tell: blame the count
        marker = await self._marker(sequence)
        return 0 if marker is None else marker + 1

    async def begin(self, sequence: int) -> None:
        """Mark the message as handled alone; a marker already there means the last
        worker to do so went away meanwhile, and is counted."""
        if self._kv is not None:
            deaths = await self.died_handling(sequence)
            await self._kv.put(self._key(sequence), str(deaths).encode())

    async def marked(self, sequences: list[int]) -> list[bool]:
        """Which of these messages a worker went away handling, alone or in a group
        (`begin_group`). One round trip for all: the lookups go out together."""
        if self._kv is None:
            return [False] * len(sequences)
        found = await asyncio.gather(*(self._entry(s) for s in sequences))
        return [entry is not None for entry in found]

    async def begin_group(self, sequences: list[int]) -> None:
        """Mark these messages as handled together: a worker that goes away now leaves
        them marked, and the next one handles each alone (`begin`). Written together:
        a crash then costs a round trip a batch, not three a message."""
        if self._kv is not None:
            await asyncio.gather(*(self._kv.put(self._key(s), _GROUP) for s in sequences))

    async def end_group(self, sequences: list[int]) -> None:
        if self._kv is not None:
            await asyncio.gather(*(self._kv.purge(self._key(s)) for s in sequences))

    async def _marker(self, sequence: int) -> int | None:
        """Deaths counted while handling it alone; None if unmarked or marked in a group
        (a death among many blames none of them)."""
        entry = await self._entry(sequence)
        if entry is None or entry.value == _GROUP:
            return None
        try:
            return int(entry.value or b"0")
        except ValueError:
            return 0

    async def _entry(self, sequence: int) -> KeyValue.Entry | None:
        try:
            return await self._kv.get(self._key(sequence))
        except KeyNotFoundError:
            return None

    async def end(self, sequence: int) -> None:
        if self._kv is not None:
            await self._kv.purge(self._key(sequence))

    def _key(self, sequence: int) -> str:
        assert self._stream is not None, "open() first"
        return f"{self._stream.name}.{self._stream.created}.{sequence}"
