"""The NATS JetStream ingest worker: fetch a batch, ingest it in one commit, then ack.

Messages are fetched in batches (up to `batch` messages, or what arrived within
`wait_ms` of the first), because one message at a time tops out near 28 k/s in
nats-py and one commit per event would be slower still. Acks go out only after
the commit: a crash in between redelivers, and the event ids derived from the
stream sequence make the redelivery a duplicate. Until then every message in
hand is marked in progress at a third of the ack wait (`in_progress.py`), so a
commit slower than the ack wait is not redelivered meanwhile. A message that
can never be ingested is published to the dead-letter subject with its reason,
then acked.

Memory is bounded by decoded sizes (`messages.py`): a message over
--max-message-mb is dead-lettered unread, and a fetched batch is committed in
parts of at most --ingest-batch-mb.

A message that a worker died holding is decoded on its own, under a marker
(`attempts.py`), its batch still committed together; once a worker has died
--max-deliveries times holding it, it is dead-lettered if a marker shows it was
being handled when a worker died, else handled wholly alone under a marker.
So a message that kills the worker cannot crash-loop it nor take its
neighbours with it, and a plain crash costs one decode per held message.

Events of every type arrive, each type on its subject `events.TYPE`
(`subjects.py`): a fetched batch is put in order by type, and each type's
messages are decoded and committed together, one `ingest` per type, each acked
after its own commit. A subject naming no type is dead-lettered; dead letters,
which the consumer's `events.>` takes in too, are acked unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from flightdeck.views import BackendError, Store
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from .attempts import BLAME, Attempts
from .backoff import Backoff
from .deliveries import Deliveries
from .errors import InvalidBatch, RetentionRace
from .event_types import EventTypes
from .in_progress import InProgress
from .messages import Decoded, Limits, Payload, decode
from .pipeline import IngestResult, ingest
from .pull import Puller, ack_all, ack_numbers, delivery_count, stream_sequence
from .refusals import find_refused
from .stall_watch import StallWatch
from .streams import (
    EVENTS,
    StreamIdentity,
    ensure_consumer,
    ensure_stream,
    replicated,
    stream_identity,
)
from .subjects import CONSUMED, by_type, dead_subject

__all__ = ["DURABLE", "IngestWorker", "WorkerOptions", "refused"]

log = logging.getLogger("flightdeck.ingest-worker")

DURABLE = "flightdeck-ingest"
_REASON_MAX = 500
_IN_HAND = 4  # batches unacked at once: fetched ahead, decoded, committing, and slack
_MiB = 1024 * 1024


@dataclass(frozen=True)
class WorkerOptions:
    """Built from the server's settings (Settings.worker_options), which hold the defaults."""

    batch: int  # messages per commit, at most; a batch fills only under backlog
    wait_ms: int  # how long a batch may wait to fill after its first message
    ack_wait_s: float  # redelivery after this long without an ack
    max_message_bytes: int  # one message, decoded; larger ones are dead-lettered
    batch_bytes: int  # decoded messages per commit, at most
    max_deliveries: int  # deliveries of a message the worker died handling alone
    event_types: EventTypes = field(default_factory=EventTypes)  # declared types to check
    replicas: int | None = None  # of the EVENTS stream and the bucket; None: as they are
    stall_warn_s: float = 30.0  # no batch finished this long while messages wait: warn


class IngestWorker:
    def __init__(
        self,
        store: Store,
        nc: Client,
        options: WorkerOptions,
        on_commit: Callable[[IngestResult], None] | None = None,
        on_dead_letter: Callable[[str], None] | None = None,
        on_batch_end: Callable[[int, str | None], None] | None = None,
    ) -> None:
        """`on_commit` gets each commit's result, `on_dead_letter` each dead letter's
        reason, `on_batch_end` each batch's end: how many messages go back for
        redelivery and why, or (0, None) when it was acked (the server counts them and
        reports a batch that keeps failing; this package knows nothing of metrics). The
        connection itself, not only its JetStream context: pull requests are sent on it."""
        self._store = store
        self._nc = nc
        self._js = nc.jetstream()
        self._options = options
        self._on_commit = on_commit
        self._on_dead_letter = on_dead_letter
        self._on_batch_end = on_batch_end
        self._batch = options.batch  # until the consumer's own limit is known
        self._limits = Limits(options.max_message_bytes, options.batch_bytes)
        self._attempts = Attempts(self._js, options.replicas)
        self._stream: StreamIdentity | None = None  # read at each (re)subscription
        self._deliveries = Deliveries()
        self._stall = StallWatch(options.stall_warn_s)
        # A commit may outlast the ack wait; a hung one may not hold messages for ever.
        vouch_s = max(10 * options.ack_wait_s, 300.0)
        self._in_progress = InProgress(nc, options.ack_wait_s, vouch_s)

    async def run(self) -> None:
        """Consume until cancelled; a failure (NATS restarting, store away) backs off, resumes."""
        watch = asyncio.create_task(self._stall.run(self._js, EVENTS.name, DURABLE))
        vouch = asyncio.create_task(self._in_progress.run())
        try:
            await self._run()
        finally:
            watch.cancel()
            vouch.cancel()

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            puller = None
            try:
                puller = await self._subscribe()
                backoff.succeeded()
                await self._consume(puller)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                retry = backoff.failed()
                self._stall.doing = f"pausing after error={exc!r}"
                if retry.log:
                    log.warning(
                        "worker paused, will resume failures=%d error=%r", retry.failures, exc
                    )
                await asyncio.sleep(retry.delay)
            finally:
                self._in_progress.clear()  # not acked: JetStream hands them out again
                if puller is not None:
                    await puller.close()

    async def _consume(self, puller: Puller) -> None:
        """While the store commits one batch, the loop fetches and decodes the next and
        acks the one before, so the two costs overlap instead of adding up. Commits go
        one at a time, in the order fetched; a batch is acked as soon as its own commit
        is done, and never before. A fetched batch over --ingest-batch-mb decoded is
        committed in parts. Messages a worker died holding are decoded one by one with
        nothing else under way, so that if the worker dies then, the blame is known."""
        ahead = asyncio.create_task(self._collect(puller))
        commit: asyncio.Task[_Outcome] | None = None
        done: asyncio.Task[None] | None = None  # the last batch's commit, then its acks
        try:
            while True:
                messages = await self._by_type(await ahead)
                ahead = asyncio.create_task(self._collect(puller))
                while messages:
                    deaths = self._deaths(messages[0])
                    if deaths > 0 and done is not None:
                        # Nothing else under way: a death from here on is this message's.
                        commit, done, before = None, None, done
                        await before
                    if deaths >= self._options.max_deliveries:
                        await self._handle_alone(messages[0])
                        messages = messages[1:]
                        continue
                    decoded = await (
                        self._decode_held(messages) if deaths else self._decode_new(messages)
                    )
                    group, messages = messages[: decoded.taken], messages[decoded.taken :]
                    if commit is not None:
                        await asyncio.shield(commit)  # raises what the commit raised
                    commit = asyncio.create_task(self._commit(decoded))
                    before, done = done, asyncio.create_task(self._finish_after(group, commit))
                    if before is not None:
                        await before  # its commit has ended; its acks overlap the new commit
        finally:
            ahead.cancel()
            if done is not None:
                # A commit under way ends in its thread anyway: ack it, or its batch
                # comes back after the ack wait, only to be a duplicate.
                with contextlib.suppress(Exception):
                    await asyncio.shield(done)

    def _deaths(self, message: Msg) -> int:
        """Deliveries that ended in a worker that went away; not ours, nor a NATS restart."""
        return self._deliveries.deaths(message)

    async def _by_type(self, messages: list[Msg]) -> list[Msg]:
        """The events among `messages`, each type's together; the rest dead-lettered
        (a subject naming no type) or passed over (dead letters), and acked."""
        groups, bad, dead = by_type(messages)
        for message, reason in bad:
            await self._dead_letter(message, reason)
        if bad or dead:
            await self._acknowledge([m for m, _ in bad] + dead)
        return [m for group in groups.values() for m in group]

    async def _decode_new(self, messages: list[Msg]) -> Decoded:
        """The leading messages no worker died holding, decoded together.

        One pass reads each ack subject once, for the deaths and the default id: it
        was a fifth of the loop's own time per message when each step read it anew."""
        prefix = f"nats:{self._stream}:"
        payloads = []
        for message in _one_type(messages):
            delivered, sequence = ack_numbers(message)
            # A first delivery the puller handed out was received here: no death.
            if delivered > 1 and self._deaths(message):
                break
            payloads.append(_payload(message, prefix, sequence))
        return await asyncio.to_thread(decode, payloads, self._limits, _type_of(messages[0]))

    async def _decode_held(self, messages: list[Msg]) -> Decoded:
        """The leading messages a worker died holding: together under group markers,
        or (those a worker also died holding together) each alone (attempts.py)."""
        limit = self._options.max_deliveries
        held = list(itertools.takewhile(lambda m: 0 < self._deaths(m) < limit, _one_type(messages)))
        # Together only while BLAME deaths alone still fit before --max-deliveries:
        # a message that kills every worker is then dead-lettered when it was before.
        if self._deaths(held[0]) + BLAME >= limit:
            return await self._decode_alone(held)
        held = held[: _run_length([self._deaths(m) + BLAME < limit for m in held])]
        sequences = [stream_sequence(m) for m in held]
        marked = await self._attempts.marked(sequences)
        if marked[0]:
            return await self._decode_alone(held[: _run_length(marked)])
        group = sequences[: _run_length([not m for m in marked])]
        await self._attempts.begin_group(group)
        decoded = await self._decode(held[: len(group)])
        await self._attempts.end_group(group)
        log.info("decoded %d messages together: a worker went away holding them", decoded.taken)
        return decoded

    async def _decode_alone(self, held: list[Msg]) -> Decoded:
        """Each message decoded on its own under a marker; together they stay within
        --ingest-batch-mb, about."""
        self._stall.doing = f"decoding {len(held)} messages one at a time"
        out, used = Decoded(event_type=_type_of(held[0])), 0
        for index, message in enumerate(held):
            sequence = stream_sequence(message)
            await self._attempts.begin(sequence)
            alone = await self._decode([message])
            await self._attempts.end(sequence)
            out.add(alone, index)
            used += sum(batch.nbytes for batch in alone.batches)
            if used >= self._limits.batch_bytes:
                break
        log.info("decoded %d messages one at a time: a worker went away holding them", out.taken)
        return out

    async def _handle_alone(self, message: Msg) -> None:
        """A message workers died holding --max-deliveries times: dead-lettered if one
        died handling it, else handled wholly alone (its commit may be what kills)."""
        sequence = stream_sequence(message)
        if await self._attempts.died_handling(sequence) >= BLAME:
            limit = self._options.max_deliveries
            await self._dead_letter(
                message,
                f"[redelivered] delivered {delivery_count(message)} times; a worker went away "
                f"while handling it, over the limit of {limit} (--max-deliveries)",
            )
            await self._acknowledge([message])
            await self._attempts.end(sequence)
            return
        await self._attempts.begin(sequence)
        try:
            await self.handle([message])
        finally:
            with contextlib.suppress(Exception):  # NATS away: the marker blames it once more
                await self._attempts.end(sequence)

    async def _subscribe(self) -> Puller:
        # Read anew each time: a stream deleted under us ends the pull (its consumer
        # goes with it) and brings us back here, to a new stream with new sequences.
        events = replicated(EVENTS, self._options.replicas)
        stream = stream_identity(await ensure_stream(self._js, events))
        if stream != self._stream:  # its sequences are new: what we received is no guide
            self._stream, self._deliveries = stream, Deliveries()
        config = ConsumerConfig(
            name=DURABLE,
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._options.ack_wait_s,
            max_ack_pending=max(_IN_HAND * self._options.batch, 1000),
            max_deliver=-1,
            filter_subjects=[CONSUMED],
        )
        info = await ensure_consumer(self._js, EVENTS.name, config)
        await self._attempts.open(self._stream)
        # A consumer made earlier (or by an operator) keeps its own limit: batches that
        # all fit under it keep the fetch ahead from stalling on unacked messages.
        limit = info.config.max_ack_pending or 0
        fits = max(1, limit // _IN_HAND) if limit > 0 else self._options.batch
        self._batch = min(self._options.batch, fits)
        puller = Puller(self._nc, EVENTS.name, DURABLE, deliveries=self._deliveries)
        return await puller.start()

    async def _collect(self, puller: Puller) -> list[Msg]:
        """Up to `batch` messages: wait for the first, then at most `wait_ms` for the rest."""
        messages = await puller.fetch(self._batch, 1.0, self._options.wait_ms / 1000)
        self._in_progress.hold(messages)
        return messages

    async def handle(self, messages: list[Msg]) -> None:
        """Ingest one fetched batch: dead-letter the unusable, commit the rest, ack all;
        in parts, each within --ingest-batch-mb decoded, and one type at a time."""
        messages = await self._by_type(messages)
        while messages:
            self._stall.doing = "handling a message alone"
            decoded = await self._decode(messages)
            group, messages = messages[: decoded.taken], messages[decoded.taken :]
            await self._finish(group, await self._commit(decoded))

    async def _decode(self, messages: list[Msg]) -> Decoded:
        """The first messages that fit the limits (`taken` of them), decoded.

        In a thread: Arrow's JSON reader lets go of the GIL, so the loop keeps receiving."""
        prefix = f"nats:{self._stream}:"
        payloads = [_payload(m, prefix, stream_sequence(m)) for m in _one_type(messages)]
        return await asyncio.to_thread(decode, payloads, self._limits, _type_of(messages[0]))

    async def _commit(self, decoded: Decoded) -> _Outcome:
        """Commit what `decoded` holds; a message whose rows the store refuses is set
        aside: a rule's refusal names its row, the store's is found by bisecting."""
        searched = False
        self._stall.doing = f"committing {decoded.taken} messages"
        while decoded.batches:
            try:
                result = await asyncio.to_thread(
                    ingest,
                    self._store,
                    decoded.batches,
                    normalised=True,
                    event_type=decoded.event_type,
                    event_types=self._options.event_types,
                )
                return _Outcome(decoded, result)
            except RetentionRace as exc:  # retention ran meanwhile: look again later
                return _Outcome(decoded, None, exc)
            except InvalidBatch as exc:
                decoded = refused(decoded, exc)
            except BackendError as exc:
                # Not the messages' fault (store away, a lock conflict): retry once it is
                # back. A search already made that still fails: the store changed; later.
                if not exc.data_refused or searched:
                    return _Outcome(decoded, None, exc)
                searched = True
                try:
                    decoded = await self._set_refused_aside(decoded)
                except (BackendError, InvalidBatch) as again:
                    return _Outcome(decoded, None, again)
        return _Outcome(decoded, None)

    async def _set_refused_aside(self, decoded: Decoded) -> Decoded:
        self._stall.doing = "finding the message the store refuses"
        refusals = await asyncio.to_thread(find_refused, self._store, decoded)
        for refusal in refusals:
            error = refusal.error
            reason = f"[store] {error.backend} refused it ({error.sqlstate}): {error.reason}"
            decoded = decoded.without(refusal.message, reason)
        return decoded

    async def _finish_after(self, messages: list[Msg], commit: asyncio.Task[_Outcome]) -> None:
        await self._finish(messages, await commit)

    async def _finish(self, messages: list[Msg], outcome: _Outcome) -> None:
        """After the commit: dead-letter the unusable, ack all; or have all redelivered."""
        if outcome.retry is not None:
            await self._retry_later(messages, outcome.retry)
            return
        for rejected in sorted(outcome.decoded.rejected, key=lambda r: r.index):
            await self._dead_letter(messages[rejected.index], rejected.reason)
        result = outcome.result
        if result is not None:
            log.debug("committed accepted=%d duplicates=%d", result.accepted, result.duplicates)
            if self._on_commit is not None:
                self._on_commit(result)
        await self._acknowledge(messages)
        self._stall.progressed()
        self._stall.doing = "fetching"
        if self._on_batch_end is not None:
            self._on_batch_end(0, None)

    async def _retry_later(self, messages: list[Msg], exc: Exception) -> None:
        first = stream_sequence(messages[0]) if messages else 0
        reason = f"batch of {len(messages)} from sequence {first}: {exc}"
        log.warning("ingest failed, messages will be redelivered %s", reason)
        self._stall.doing = f"retrying a batch that failed: {reason}"
        self._in_progress.release(messages)
        await asyncio.gather(*(m.nak(delay=2.0) for m in messages))
        if self._on_batch_end is not None:
            self._on_batch_end(len(messages), reason)

    async def _acknowledge(self, messages: list[Msg]) -> None:
        self._in_progress.release(messages)
        await ack_all(self._nc, messages)

    async def _dead_letter(self, message: Msg, reason: str) -> None:
        sequence = stream_sequence(message)
        log.warning("dead-lettered sequence=%d reason=%s", sequence, reason)
        headers = {
            "Nats-Msg-Id": f"dead:{self._stream}:{sequence}",
            # One line, and short: headers are not the place for a whole payload.
            "Flightdeck-Reason": reason.replace("\r", " ").replace("\n", " ")[:_REASON_MAX],
            "Flightdeck-Subject": message.subject,
            "Flightdeck-Sequence": str(sequence),
        }
        subject = dead_subject(message.subject)
        await self._js.publish(subject, message.data, stream=EVENTS.name, headers=headers)
        if self._on_dead_letter is not None:
            self._on_dead_letter(reason)


@dataclass(frozen=True)
class _Outcome:
    decoded: Decoded  # as committed: messages the store refused are among `rejected`
    result: IngestResult | None
    retry: Exception | None = None  # set: nothing was committed, redeliver the batch


def refused(decoded: Decoded, exc: InvalidBatch) -> Decoded:
    """`decoded` without the messages `exc` refuses: the one owning its row, or every
    one when it names no row. Never a retry: only a RetentionRace says a retry helps,
    and a refusal that leaves a field out must not keep messages coming back forever."""
    if exc.row is not None:  # e.g. a day retention closed: that message only
        return decoded.without(decoded.owners[exc.row], _reason(exc))
    for message in sorted(set(decoded.owners)):
        decoded = decoded.without(message, _reason(exc))
    return decoded


def _reason(exc: InvalidBatch) -> str:
    return f"[{exc.rule}] {exc.column}: {exc.detail}"


def _type_of(message: Msg) -> str:
    """The event type of a message `by_type` let through: its subject after `events.`."""
    return message.subject[len("events.") :]


def _run_length(flags: list[bool]) -> int:
    """How many leading flags are true."""
    return next((i for i, flag in enumerate(flags) if not flag), len(flags))


def _one_type(messages: list[Msg]) -> list[Msg]:
    """The leading messages of the first one's type (`_by_type` put each type together)."""
    subject = messages[0].subject
    for i, message in enumerate(messages):
        if message.subject != subject:
            return messages[:i]
    return messages


def _payload(message: Msg, prefix: str, sequence: int) -> Payload:
    """The sender's Nats-Msg-Id is the event_id of an event without one (its retries
    are then duplicates even in another stream); else `prefix` (the stream's lifetime)
    and the message's stream `sequence`, so a redelivery is a duplicate and a new
    stream's message not."""
    headers = message.headers
    sender_id = headers.get("Nats-Msg-Id") if headers else None
    return Payload(message.data, headers, sender_id or f"{prefix}{sequence}")
