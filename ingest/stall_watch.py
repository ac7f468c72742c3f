"""A warning when the ingest worker has finished no batch for a long time though messages wait.

A worker that commits nothing while its consumer holds messages looks, from
outside, exactly like an idle one. Once every `after_s` without a finished
batch, this asks JetStream about the consumer and, if messages are waiting or
unacked, says so with what the worker is doing and the consumer's numbers, so
the cause can be read off the line: e.g. every message unacked at the consumer's
max_ack_pending, held by a worker that went away until its ack wait ends.
"""

from __future__ import annotations

import asyncio
import logging
import time

from nats.js import JetStreamContext

__all__ = ["StallWatch"]

log = logging.getLogger("flightdeck.ingest-worker")


class StallWatch:
    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self.doing = "starting"  # what the worker is at, for the warning
        self._last = time.monotonic()

    def progressed(self) -> None:
        """A batch was finished (committed and acked, or dead-lettered)."""
        self._last = time.monotonic()

    async def run(self, js: JetStreamContext, stream: str, consumer: str) -> None:
        """Until cancelled: warn at most once every `after_s` while stalled."""
        while True:
            await asyncio.sleep(max(0.0, self._last + self.after_s - time.monotonic()))
            stalled = time.monotonic() - self._last
            if stalled < self.after_s:
                continue
            try:
                info = await js.consumer_info(stream, consumer)
            except Exception as exc:  # NATS away: the connection says so itself
                info, reason = None, f"consumer info unavailable: {exc!r}"
            if info is not None:
                if not (info.num_pending or info.num_ack_pending):
                    self._last = time.monotonic()  # nothing to do is no stall
                    continue
                reason = _why(info)
            log.warning(
                "ingest worker finished no batch for %.0f s while messages wait; doing=%s %s",
                stalled,
                self.doing,
                reason,
            )
            self._last = time.monotonic()


def _why(info) -> str:
    config = info.config
    numbers = (
        f"pending={info.num_pending} unacked={info.num_ack_pending} "
        f"max_ack_pending={config.max_ack_pending} ack_wait_s={config.ack_wait} "
        f"redelivered={info.num_redelivered} waiting_pulls={info.num_waiting}"
    )
    limit = config.max_ack_pending or 0
    if limit > 0 and info.num_ack_pending >= limit:
        cause = "max_ack_pending reached: unacked messages (maybe a dead worker's) block delivery"
        return f"{numbers} ({cause} until ack_wait_s passes)"
    return numbers
