"""The JetStream streams flightdeck reads and writes, created when missing.

A stream that already exists keeps its limits: an operator may have set their
own, and we must not fight over them. Its replicas are the one setting
flightdeck enforces (--nats-replicas): a stream made before a cluster grew
is moved to the replicas asked for, which JetStream does in place.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    ConsumerInfo,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.errors import NotFoundError

__all__ = [
    "AGGREGATES",
    "AGGREGATE_SUBJECT",
    "DEAD_SUBJECT",
    "EVENTS",
    "EVENT_SUBJECT",
    "StreamIdentity",
    "ensure_consumer",
    "ensure_stream",
    "replicated",
    "stream_identity",
    "update_log",
]

_WEEK = 7 * 24 * 3600.0

EVENT_SUBJECT = "events.pageview"
DEAD_SUBJECT = "events.dead.pageview"  # inside EVENTS, so dead letters are kept with the rest
AGGREGATE_SUBJECT = "analytics.aggregate.updated"

# Raw event messages, and dead letters, are kept a week after ingest: enough to
# inspect or replay; the store holds the events themselves.
EVENTS = StreamConfig(
    name="EVENTS",
    subjects=["events.>"],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    max_age=_WEEK,
)
# The update log live subscribers resume from (docs/live.md): a cursor is a
# sequence in this stream. Nats-Msg-Id dedupes re-sends within the window.
AGGREGATES = StreamConfig(
    name="AGGREGATES",
    subjects=[AGGREGATE_SUBJECT],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    max_age=_WEEK,
    duplicate_window=600.0,
)


def update_log(retention_hours: float) -> StreamConfig:
    """AGGREGATES keeping `retention_hours` of updates: how far back a cursor can resume."""
    return dataclasses.replace(AGGREGATES, max_age=retention_hours * 3600.0)


def replicated(config: StreamConfig, replicas: int | None) -> StreamConfig:
    """`config` kept on `replicas` nodes of a JetStream cluster (None: whatever it has)."""
    return dataclasses.replace(config, num_replicas=replicas)


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> StreamInfo:
    """The stream `config` names, created if missing; moved to `config.num_replicas`
    when it has other replicas (unless that is None: a caller with no say in it)."""
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        return await js.add_stream(config)
    wanted = config.num_replicas
    if wanted is None or (info.config.num_replicas or 1) == wanted:
        return info
    # JetStream grows or shrinks the peer group itself, copying the messages over.
    return await js.update_stream(dataclasses.replace(info.config, num_replicas=wanted))


@dataclass(frozen=True)
class StreamIdentity:
    """One stream's lifetime. Sequences restart at 1 in a new stream (another NATS,
    a lost store, a stream deleted and made again), so a sequence names a message
    only together with this."""

    name: str
    created: int  # microseconds since the epoch

    def __str__(self) -> str:
        return f"{self.name}:{self.created}"


def stream_identity(info: StreamInfo) -> StreamIdentity:
    created = info.created
    if created is None:  # every JetStream server reports it; refuse to guess
        raise RuntimeError(f"stream {info.config.name} reports no creation time")
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.UTC)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return StreamIdentity(info.config.name, (created - epoch) // datetime.timedelta(microseconds=1))


async def ensure_consumer(
    js: JetStreamContext, stream: str, config: ConsumerConfig
) -> ConsumerInfo:
    """The durable consumer `config` names, created if missing. Like a stream, an
    existing one keeps its settings (JetStream refuses to change e.g. its ack
    policy, and an operator's limits are theirs), all but its filter: one an older
    flightdeck made reads `events.pageview` alone and must read every type now.

    The filter is updated in place, not by deleting and creating anew: an update
    keeps the consumer's place and its unacked messages, which are redelivered
    as before. Messages of the newly read subjects stored before that place (sent
    while only page views were read) are not read back: no flightdeck took them
    then, and replaying a week of them at start-up would surprise more than help."""
    try:
        info = await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        return await js.add_consumer(stream, config)
    wanted = _filters(config)
    if _filters(info.config) == wanted:
        return info
    moved = dataclasses.replace(info.config, filter_subject=None, filter_subjects=wanted)
    return await js.add_consumer(stream, moved)


def _filters(config: ConsumerConfig) -> list[str]:
    if config.filter_subjects:
        return list(config.filter_subjects)
    return [config.filter_subject] if config.filter_subject else []
