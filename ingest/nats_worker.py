"""The NATS JetStream ingest worker: fetch a batch, ingest it in one commit, then ack.

Messages are fetched in batches (up to `batch` messages, or what arrived within
`wait_ms` of the first), because one message at a time tops out near 28 k/s in
nats-py and one commit per event would be slower still. Acks go out only after
the commit: a crash in between redelivers, and the event ids derived from the
stream sequence make the redelivery a duplicate. A message that can never be
ingested is published to the dead-letter subject with its reason, then acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from flightdeck.views import BackendError, Store
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from .errors import InvalidBatch
from .messages import Payload, decode
from .pipeline import IngestResult, ingest
from .streams import DEAD_SUBJECT, EVENT_SUBJECT, EVENTS, ensure_stream

__all__ = ["DURABLE", "IngestWorker", "WorkerOptions"]

log = logging.getLogger("flightdeck.ingest-worker")

DURABLE = "flightdeck-ingest"
_REASON_MAX = 500


@dataclass(frozen=True)
class WorkerOptions:
    batch: int = 5000  # messages per commit, at most (a batch fills only under backlog)
    wait_ms: int = 100  # how long a batch may wait to fill after its first message
    ack_wait_s: float = 60.0  # redelivery after this long without an ack


class IngestWorker:
    def __init__(
        self,
        store: Store,
        js: JetStreamContext,
        options: WorkerOptions = WorkerOptions(),
        on_commit: Callable[[IngestResult], None] | None = None,
        on_dead_letter: Callable[[str], None] | None = None,
    ) -> None:
        """`on_commit` gets each commit's result, `on_dead_letter` each dead letter's
        reason (the server counts them; this package knows nothing of metrics)."""
        self._store = store
        self._js = js
        self._options = options
        self._on_commit = on_commit
        self._on_dead_letter = on_dead_letter

    async def run(self) -> None:
        """Consume until cancelled; a failure (NATS restarting, store away) backs off, resumes."""
        failures = 0
        while True:
            sub = None
            try:
                sub = await self._subscribe()
                failures = 0
                await self._consume(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("worker paused, will resume error=%r", exc)
                await asyncio.sleep(min(0.2 * 2**failures, 10.0))
            finally:
                if sub is not None:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()

    async def _consume(self, sub: JetStreamContext.PullSubscription) -> None:
        """Fetch the next batch while this one commits: nats-py's per-message cost and
        the store's commit then overlap instead of adding up."""
        ahead = asyncio.create_task(self._collect(sub))
        try:
            while True:
                messages = await ahead
                ahead = asyncio.create_task(self._collect(sub))
                if messages:
                    await self.handle(messages)
        finally:
            ahead.cancel()

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        await ensure_stream(self._js, EVENTS)
        config = ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._options.ack_wait_s,
            max_ack_pending=max(4 * self._options.batch, 1000),
            max_deliver=-1,
            filter_subject=EVENT_SUBJECT,
        )
        return await self._js.pull_subscribe(
            EVENT_SUBJECT, durable=DURABLE, stream=EVENTS.name, config=config
        )

    async def _collect(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        """Up to `batch` messages: wait for the first, then at most `wait_ms` for the rest."""
        messages: list[Msg] = []
        loop = asyncio.get_running_loop()
        deadline = None
        while len(messages) < self._options.batch:
            timeout = 1.0 if deadline is None else deadline - loop.time()
            if timeout <= 0:
                break
            try:
                messages += await sub.fetch(self._options.batch - len(messages), timeout=timeout)
            except TimeoutError:
                break
            if deadline is None:
                deadline = loop.time() + self._options.wait_ms / 1000
        return messages

    async def handle(self, messages: list[Msg]) -> None:
        """Ingest one fetched batch: dead-letter the unusable, commit the rest, ack all."""
        decoded = decode([_payload(m) for m in messages])
        result = None
        while decoded.batches:
            try:
                result = await asyncio.to_thread(ingest, self._store, decoded.batches)
                break
            except InvalidBatch as exc:
                if exc.row is not None:  # e.g. a day retention closed: that message only
                    decoded = decoded.without(decoded.owners[exc.row], _reason(exc))
                    continue
                await self._retry_later(messages, exc)  # retention ran meanwhile: look again
                return
            except BackendError as exc:  # not the messages' fault: retry once the store is back
                await self._retry_later(messages, exc)
                return
        for rejected in sorted(decoded.rejected, key=lambda r: r.index):
            await self._dead_letter(messages[rejected.index], rejected.reason)
        if result is not None:
            log.debug("committed accepted=%d duplicates=%d", result.accepted, result.duplicates)
            if self._on_commit is not None:
                self._on_commit(result)
        await self._acknowledge(messages)

    async def _retry_later(self, messages: list[Msg], exc: Exception) -> None:
        log.warning("ingest failed, messages will be redelivered error=%s", exc)
        await asyncio.gather(*(m.nak(delay=2.0) for m in messages))

    async def _acknowledge(self, messages: list[Msg]) -> None:
        for message in messages:
            await message.ack()

    async def _dead_letter(self, message: Msg, reason: str) -> None:
        sequence = message.metadata.sequence.stream
        log.warning("dead-lettered sequence=%d reason=%s", sequence, reason)
        headers = {
            "Nats-Msg-Id": f"dead:{EVENTS.name}:{sequence}",
            # One line, and short: headers are not the place for a whole payload.
            "Flightdeck-Reason": reason.replace("\r", " ").replace("\n", " ")[:_REASON_MAX],
            "Flightdeck-Subject": message.subject,
            "Flightdeck-Sequence": str(sequence),
        }
        await self._js.publish(DEAD_SUBJECT, message.data, stream=EVENTS.name, headers=headers)
        if self._on_dead_letter is not None:
            self._on_dead_letter(reason)


def _reason(exc: InvalidBatch) -> str:
    return f"[{exc.rule}] {exc.column}: {exc.detail}"


def _payload(message: Msg) -> Payload:
    default_id = f"nats:{EVENTS.name}:{message.metadata.sequence.stream}"
    return Payload(message.data, message.headers, default_id)
