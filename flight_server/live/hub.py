"""The live hub: one NATS subscription per process, fanned out to every subscriber.

It follows `analytics.aggregate.updated` with a JetStream ordered consumer
(new messages only), so each update carries its stream sequence: the cursor.
Filtering and projection happen here on Arrow tables, once per group of
subscriptions that select the same rows; each subscriber's `Pending` buffer
coalesces and bounds what it has not yet read, so a slow reader never holds up
the hub, ingest or other readers.

Only updates signed by flightdeck's own publisher count (ingest/update_signature.py):
anything else on the subject, live or replayed, is dropped, counted and logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading

import nats.errors
import pyarrow as pa
from flightdeck.ingest.backoff import Backoff
from flightdeck.ingest.ipc_size import OverLimit, read_bounded
from flightdeck.ingest.streams import AGGREGATE_SUBJECT, AGGREGATES
from flightdeck.ingest.update_signature import KIND_HEADER, SIGNATURE_HEADER, verify
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from ..log_limit import LogLimit
from .group import Group
from .pending import Pending, newest_per_key
from .request import Subscription

__all__ = ["LiveHub"]

log = logging.getLogger("flightdeck.live")

# How long a resume waits for an unanswering update log before it resyncs instead.
REPLAY_BUDGET_S = 20.0


class LiveHub:
    def __init__(
        self, buffer_keys: int, max_update_bytes: int, *, key: bytes, held_limit: int = 1_000_000
    ) -> None:
        """`buffer_keys`: unsent rows a subscriber may lag by (--live-buffer-rows).
        `max_update_bytes`: an update decoding to more is skipped unread (ours are
        pieces of at most 512 KB; anything bigger on the update log is not ours).
        `key`: what the publisher signs updates with (update_signature.signing_key).
        `held_limit`: rows a subscriber may hold (--live-held-rows): what it was sent
        and not since removed, tracked so that a row leaving its filter is sent as
        `remove`."""
        self.held_limit = held_limit
        self.lifetime = ""  # set by follow(): the update log's creation time
        self._buffer_keys = buffer_keys
        self._max_update_bytes = max_update_bytes
        self._key = key
        self.rejected = 0  # updates dropped for a missing or wrong signature
        self._rejections = LogLimit()
        self._lock = threading.Lock()
        self._groups: dict[tuple, Group] = {}  # by Subscription.selection
        self._subscribers: dict[Pending, Group] = {}
        self.position = 0  # the newest update-log sequence the hub has seen
        self.ready = threading.Event()
        self._js: JetStreamContext | None = None
        self._following: JetStreamContext.PushSubscription | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def follow(self, js: JetStreamContext) -> None:
        """Start following the update log from now (on the NATS loop)."""
        self._js, self._loop = js, asyncio.get_running_loop()
        info = await js.stream_info(AGGREGATES.name)
        self.position = info.state.last_seq
        # When the update log was made: a cursor from another lifetime of it (a stream
        # deleted and made again) names other updates, even where its number still fits.
        self.lifetime = str(info.created or "")
        self._following = await js.subscribe(
            AGGREGATE_SUBJECT,
            stream=AGGREGATES.name,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
            cb=self._on_update,
        )
        self.ready.set()

    async def unfollow(self) -> None:
        """Stop following (on the NATS loop). Closing the connection would leave the
        ordered consumer's heartbeat and flow-control tasks pending; unsubscribing ends them."""
        following, self._following = self._following, None
        if following is not None:
            with contextlib.suppress(Exception):  # a connection already lost has nothing to end
                await following.unsubscribe()

    def register(self, subscription: Subscription) -> Pending:
        """From a DoExchange thread: start collecting updates for `subscription` now."""
        pending = Pending(subscription.keys, self._buffer_keys)
        with self._lock:
            group = self._groups.get(subscription.selection)
            if group is None:
                group = self._groups[subscription.selection] = Group(subscription)
            group.members.add(pending)
            self._subscribers[pending] = group
            pending.offer(None, self.position)
        return pending

    def unregister(self, pending: Pending) -> None:
        with self._lock:
            group = self._subscribers.pop(pending, None)
            if group is not None:
                group.members.discard(pending)
                if not group.members:
                    del self._groups[group.selection]

    def replay(
        self, subscription: Subscription, after: int, upto: int, budget_s: float = REPLAY_BUDGET_S
    ) -> pa.Table | None:
        """From a DoExchange thread: the newest row per key of `subscription`'s updates
        in (after, upto]; None when the log no longer holds them all, when `after` is
        past `upto` (a cursor from another log or a wiped one), or when the log did not
        answer within `budget_s`: each means resync."""
        assert self._loop is not None, "follow() first"
        future = asyncio.run_coroutine_threadsafe(
            self._replay_within(subscription, after, upto, budget_s), self._loop
        )
        try:
            return future.result(budget_s + 5)
        except concurrent.futures.TimeoutError:  # the NATS loop itself is stuck
            future.cancel()
            return None

    async def _replay_within(
        self, subscription: Subscription, after: int, upto: int, budget_s: float
    ) -> pa.Table | None:
        """_replay, tried again while NATS does not answer: a JetStream leader election
        or a reconnect leaves the update log silent for seconds. Past `budget_s`, resync:
        a fresh snapshot from the store is as exact as a replay, only bigger."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        backoff = Backoff(first_s=0.2, cap_s=2.0)
        while True:
            left = deadline - loop.time()
            try:
                return await asyncio.wait_for(self._replay(subscription, after, upto), left)
            except nats.errors.ConnectionClosedError:
                return None  # shutting down: nothing to wait for
            except (TimeoutError, nats.errors.Error) as exc:
                retry = backoff.failed()
                if loop.time() + retry.delay >= deadline:
                    log.warning(
                        "a resume from cursor %d could not read the update log within %.0f s "
                        "(%s): resync",
                        after,
                        budget_s,
                        str(exc) or type(exc).__name__,
                    )
                    return None
                if retry.log:
                    log.info("a resume from cursor %d waits for the update log: %s", after, exc)
                await asyncio.sleep(retry.delay)

    async def _replay(self, subscription: Subscription, after: int, upto: int):
        if after > upto:
            log.info("a subscriber resumed from cursor %d, past this log's %d: resync", after, upto)
            return None
        info = await self._js.stream_info(AGGREGATES.name)
        if after + 1 < info.state.first_seq:
            return None
        tables: list[pa.Table] = []
        if after >= upto:
            return pa.table({})
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1
        )
        sub = await self._js.subscribe(
            AGGREGATE_SUBJECT, stream=AGGREGATES.name, ordered_consumer=True, config=config
        )
        try:
            while True:
                message = await sub.next_msg(timeout=5)
                table = (
                    _decode(message, self._max_update_bytes)
                    if self._signed(message, "replay")
                    else None
                )
                if (
                    table is not None
                    and message.headers.get("Flightdeck-View") == subscription.view
                ):
                    tables.append(_marked(subscription, message, table))
                if len(tables) > 256:  # keep memory to one row per key
                    tables = [newest_per_key(pa.concat_tables(tables), subscription.keys)]
                if message.metadata.sequence.stream >= upto:
                    break
        finally:
            await sub.unsubscribe()
        if not tables:
            return pa.table({})
        return newest_per_key(pa.concat_tables(tables), subscription.keys)

    def close(self) -> None:
        """Tell every subscription to end (the server is shutting down)."""
        with self._lock:
            targets = list(self._subscribers)
        for pending in targets:
            pending.close()

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def pending_rows(self) -> list[int]:
        """Per subscriber, the update rows not yet sent (read at each metrics scrape)."""
        with self._lock:
            targets = list(self._subscribers)
        return [pending.rows for pending in targets]

    async def _on_update(self, message: Msg) -> None:
        if not self._signed(message, "live"):
            return
        sequence = message.metadata.sequence.stream
        view = (message.headers or {}).get("Flightdeck-View")
        removal = _is_removal(message)
        table = _decode(message, self._max_update_bytes)
        with self._lock:
            self.position = max(self.position, sequence)
            targets = [(group, list(group.members)) for group in self._groups.values()]
        for group, members in targets:
            rows = None
            if table is not None and group.view == view:
                rows = group.removed(table) if removal else group.rows(table)
            for pending in members:
                pending.offer(rows, sequence)

    def _signed(self, message: Msg, path: str) -> bool:
        """On the NATS loop: is `message` flightdeck's own? If not, count and (now and then) log."""
        if verify(self._key, message.subject, message.headers, message.data):
            return True
        self.rejected += 1
        held = self._rejections.admit()
        if held is not None:
            log.warning(
                "dropped an update without a valid signature path=%s sequence=%d "
                "signed=%s rejected_total=%d (%d more not logged): not from flightdeck's "
                "publisher, or signed with another store's key",
                path,
                message.metadata.sequence.stream,
                SIGNATURE_HEADER in (message.headers or {}),
                self.rejected,
                held,
            )
        return False


def _is_removal(message: Msg) -> bool:
    return (message.headers or {}).get(KIND_HEADER) == "remove"


def _marked(subscription: Subscription, message: Msg, table: pa.Table) -> pa.Table:
    """One update log message as the subscription's rows, marked (request.LIVE)."""
    return subscription.removed(table) if _is_removal(message) else subscription.marked(table)


def _aligned(data: bytes) -> pa.Buffer:
    """`data` copied to memory Arrow allocated: its columns are then aligned as Acero's
    joins (Sent, top-N) want, not wherever the NATS client's bytes happen to start."""
    sink = pa.BufferOutputStream()
    sink.write(data)
    return sink.getvalue()


def _decode(message: Msg, max_bytes: int) -> pa.Table | None:
    try:
        return read_bounded(_aligned(message.data), max_bytes)
    except (pa.ArrowException, OSError, ValueError, OverLimit) as exc:
        log.warning(
            "unreadable update skipped sequence=%d error=%r", message.metadata.sequence.stream, exc
        )
        return None
