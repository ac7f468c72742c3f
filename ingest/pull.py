"""Batches from a JetStream pull consumer, delivered through one callback subscription.

nats-py's `PullSubscription.fetch` waits for each message with its own task and
timer (`next_msg`), about 50 µs a message: the worker's ceiling near 20 k/s.
Here one inbox subscription with a callback appends deliveries to a list
(about 9 µs a message) and wakes the fetcher only when enough have arrived.

One pull request is open at a time, for (the rest of) a batch, and the next is
sent as a fetch returns, so the server streams while the caller works; what
arrives after a fetch returned stays buffered for the next one. Messages never handed out are
nak'd on close, so they come back at once rather than after the ack wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from nats.aio.client import Client
from nats.aio.msg import Msg

if TYPE_CHECKING:
    from .deliveries import Deliveries

__all__ = [
    "PullError",
    "Puller",
    "ack_all",
    "ack_numbers",
    "delivery_count",
    "progress_all",
    "stream_sequence",
]

# The server answers a pull request that expired with 408, a no_wait one with 404;
# 100 is an idle heartbeat. Anything else (a deleted consumer, a leadership change,
# too many waiting requests) is for the caller to recover from.
_REQUEST_OVER = frozenset({"404", "408"})
_HEARTBEAT = "100"
_REQUEST_S = 5.0  # how long a pull request waits on the server for messages
_GRACE_S = 1.0  # then a lost 408 (NATS reconnected meanwhile) is assumed
_IN_PROGRESS = b"+WPI"  # JetStream's "working on it": the ack wait starts again
_ACKS_PER_WRITE = 4096  # acks joined into one command: well under nats-py's 2 MB buffer


class PullError(Exception):
    """The server ended a pull request with a status other than "no messages yet"."""

    def __init__(self, status: str, description: str) -> None:
        super().__init__(f"pull request failed: {status} {description}".strip())
        self.status = status
        self.description = description


class Puller:
    def __init__(
        self,
        nc: Client,
        stream: str,
        consumer: str,
        api_prefix: str = "$JS.API",
        deliveries: Deliveries | None = None,
    ) -> None:
        """`deliveries` learns of every stream message as it arrives, handed out or not,
        and of deliveries the server may have sent that never arrived."""
        self._nc = nc
        self._deliveries = deliveries
        self._next = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._sub = None
        self._ready: list[Msg] = []
        self._open = 0  # messages the open pull request may still deliver
        self._open_until = 0.0  # loop time after which it is over, 408 or not
        self._want = 1  # how many buffered messages wake the fetcher
        self._woken = asyncio.Event()
        self._failure: PullError | None = None

    async def start(self) -> Puller:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._arrived)
        return self

    async def close(self) -> None:
        """Unsubscribe; messages delivered but never handed out are nak'd for redelivery."""
        left, self._ready = self._ready, []
        self._lose_open_request()  # whatever it still sends goes to an inbox nobody reads
        with contextlib.suppress(Exception):
            if self._sub is not None:
                await self._sub.unsubscribe()
            for message in left:
                await message.nak()

    async def fetch(self, batch: int, timeout: float, linger: float) -> list[Msg]:
        """Up to `batch` messages: wait up to `timeout` for the first, then up to `linger`
        for the batch to fill. An empty list when nothing came in `timeout`."""
        loop = asyncio.get_running_loop()
        if not await self._gather(1, batch, loop.time() + timeout):
            return []
        await self._gather(batch, batch, loop.time() + linger)
        out, self._ready = self._ready[:batch], self._ready[batch:]
        # Ask for the next batch now: the server sends it while this one is decoded
        # and committed, instead of after a round trip when the next fetch begins.
        await self._request(batch - len(self._ready), loop.time())
        return out

    async def _gather(self, want: int, batch: int, deadline: float) -> bool:
        """Wait until `want` messages are buffered (True) or `deadline` passes (False)."""
        loop = asyncio.get_running_loop()
        while len(self._ready) < want:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            left = deadline - loop.time()
            if left <= 0:
                return False
            now = loop.time()
            self._want = want
            self._woken.clear()  # before the request: an arrival during it still wakes us
            await self._request(batch - len(self._ready), now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), min(left, self._open_until - now))
        return True

    async def _request(self, count: int, now: float) -> None:
        if count <= 0 or (self._open > 0 and now < self._open_until):
            return  # enough buffered, or the open request still delivers
        self._lose_open_request()
        request = {"batch": count, "expires": int(_REQUEST_S * 1e9)}
        await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
        self._open = count
        self._open_until = now + _REQUEST_S + _GRACE_S

    def _lose_open_request(self) -> None:
        """An open request that ends without the server saying so (NATS reconnected, or we
        closed) may have had messages on their way: delivered to the server, never to us."""
        if self._open > 0 and self._deliveries is not None:
            self._deliveries.lost(self._open)
        self._open = 0

    async def _arrived(self, msg: Msg) -> None:
        if msg.reply:  # a stream message: only those carry an ack subject
            if self._deliveries is not None:
                self._deliveries.received(msg)
            self._ready.append(msg)
            self._open -= 1
            # Wake the fetcher when it has enough, or when the request is satisfied
            # (the server says nothing then) and a new one must be sent.
            if len(self._ready) >= self._want or self._open == 0:
                self._woken.set()
            return
        status = (msg.headers or {}).get("Status", "")
        if status == _HEARTBEAT:
            return
        self._open = 0
        if status not in _REQUEST_OVER:
            self._failure = PullError(status, (msg.headers or {}).get("Description", ""))
        self._woken.set()


def stream_sequence(message: Msg) -> int:
    """The message's stream sequence, read straight from its ack subject.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>`,
    or with a domain and account hash after `ACK` (and maybe a token more at the end).
    nats-py's `Msg.metadata` parses every field into objects: a top cost per message.
    """
    token = _ack_token(message, 1)
    if token is not None:
        return int(token)
    return message.metadata.sequence.stream  # raises nats-py's own error for a non-JS message


def ack_numbers(message: Msg) -> tuple[int, int]:
    """(delivery count, stream sequence) from one split of the ack subject."""
    tokens = (message.reply or "").split(".")
    if tokens[:2] == ["$JS", "ACK"]:
        if len(tokens) == 9:
            return int(tokens[4]), int(tokens[5])
        if len(tokens) >= 11:
            return int(tokens[6]), int(tokens[7])
    metadata = message.metadata  # raises nats-py's own error for a non-JS message
    return metadata.num_delivered, metadata.sequence.stream


async def ack_all(nc: Client, messages: list[Msg]) -> None:
    """Ack `messages`, joined into few writes while connected.

    An ack is an empty publish to the message's ack subject; nats-py's `Msg.ack`
    checks the subject and builds one command per message, about a fifth of the
    worker's own time per message. The subjects come from the server, so the
    commands are built here and queued with nats-py's `_send_command` (private,
    the one it uses itself). Not connected: one by one, which buffers or raises
    as nats-py decides; so too with a nats-py that no longer has those private methods."""
    await _reply_all(nc, messages, b"")


async def progress_all(nc: Client, messages: list[Msg]) -> None:
    """Tell JetStream `messages` are still being worked on (`+WPI`): each one's ack
    wait starts again. Joined into few writes, as `ack_all`."""
    await _reply_all(nc, messages, _IN_PROGRESS)


async def _reply_all(nc: Client, messages: list[Msg], body: bytes) -> None:
    send = getattr(nc, "_send_command", None)
    flush = getattr(nc, "_flush_pending", None)
    if not nc.is_connected or send is None or flush is None:
        for message in messages:
            await (message.in_progress() if body == _IN_PROGRESS else message.ack())
        return
    command = b"PUB %s " + b"%d\r\n%s\r\n" % (len(body), body)
    for start in range(0, len(messages), _ACKS_PER_WRITE):
        chunk = messages[start : start + _ACKS_PER_WRITE]
        await send(b"".join(command % _reply(m) for m in chunk))
    await flush()


def _reply(message: Msg) -> bytes:
    if not message.reply:
        raise ValueError("no ack subject: not a JetStream message")
    return message.reply.encode()


def delivery_count(message: Msg) -> int:
    """How many times JetStream has delivered this message (1 the first time)."""
    token = _ack_token(message, 0)
    if token is not None:
        return int(token)
    return message.metadata.num_delivered


def _ack_token(message: Msg, index: int) -> str | None:
    """Token `index` from <delivered> on in the ack subject (0: delivered, 1: stream seq)."""
    tokens = (message.reply or "").split(".")
    if tokens[:2] == ["$JS", "ACK"]:
        if len(tokens) == 9:
            return tokens[4 + index]
        if len(tokens) >= 11:
            return tokens[6 + index]
    return None
