"""The JetStream streams flightdeck needs, created (or checked) before it says it is ready."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flightdeck.ingest.backoff import Retry, until_done
from flightdeck.ingest.streams import ensure_stream
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

__all__ = ["set_up_streams"]

log = logging.getLogger("flightdeck.streams")


async def set_up_streams(js: JetStreamContext, streams: Sequence[StreamConfig]) -> None:
    """Every stream exists when this returns; a NATS without JetStream is retried, loudly
    (an error line: nothing is ingested or published until someone turns JetStream on)."""

    async def attempt() -> None:
        for stream in streams:
            await ensure_stream(js, stream)

    def say(retry: Retry, exc: Exception) -> None:
        log.error(
            "cannot create or update JetStream streams (is JetStream on? replicas over "
            "the cluster's nodes?) failures=%d error=%r",
            retry.failures,
            exc,
        )

    await until_done(attempt, say)
