"""Keep JetStream from redelivering what the worker is still working on.

A message fetched and not yet acked comes back after the consumer's ack wait.
A commit can outlast it (a big batch, a reaggregate holding the writer's turn,
a loaded machine); the messages then come back while their commit runs, only to
be duplicates: wasted work, and delivery counts that look like a worker died.
So every message in hand is sent `+WPI` (in progress) at a third of the ack
wait, until it is acked, nak'ed or given back. A worker that is gone sends
nothing, so its messages still come back after one ack wait; one that hangs
stops vouching for a message after `limit_s` in hand, so a stuck commit cannot
hold messages forever.
"""

from __future__ import annotations

import asyncio
import logging
import time

from nats.aio.client import Client
from nats.aio.msg import Msg

from .pull import progress_all

__all__ = ["InProgress"]

log = logging.getLogger("flightdeck.ingest-worker")


class InProgress:
    """The messages in hand, and the task that vouches for them (`run`)."""

    def __init__(self, nc: Client, ack_wait_s: float, limit_s: float) -> None:
        self._nc = nc
        self._every = ack_wait_s / 3
        self._limit = limit_s
        self._held: dict[int, tuple[Msg, float]] = {}  # by id(): a Msg is not hashable

    def hold(self, messages: list[Msg]) -> None:
        now = time.monotonic()
        for message in messages:
            self._held.setdefault(id(message), (message, now))

    def release(self, messages: list[Msg]) -> None:
        for message in messages:
            self._held.pop(id(message), None)

    def clear(self) -> None:
        """Everything in hand is given back (the subscription ended): JetStream redelivers."""
        self._held.clear()

    async def run(self) -> None:
        """Until cancelled: every third of the ack wait, `+WPI` for each message in hand."""
        while True:
            await asyncio.sleep(self._every)
            await self.vouch()

    async def vouch(self) -> None:
        oldest = time.monotonic() - self._limit
        due = [m for m, since in self._held.values() if since > oldest]
        if not due or not self._nc.is_connected:
            return  # disconnected: the ack wait decides, as for a worker that is gone
        try:
            await progress_all(self._nc, due)
        except Exception as exc:  # the connection went meanwhile: the same as above
            log.debug("in-progress acks not sent: %r", exc)
