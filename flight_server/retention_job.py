"""Raw-event retention as a recurring job: a pass at start, then one an hour."""

from __future__ import annotations

import asyncio
import logging

from flightdeck.ingest import retention
from flightdeck.views import Store

__all__ = ["RetentionJob"]

log = logging.getLogger("flightdeck.retention")

_EVERY_S = 3600.0


class RetentionJob:
    def __init__(self, store: Store, days: int, every_s: float = _EVERY_S) -> None:
        """`days`: raw events older than this many UTC days go; 0 keeps them all."""
        self._store = store
        self._days = days
        self._every_s = every_s

    async def run(self) -> None:
        """Until cancelled; the store's work runs on a thread, off the NATS loop."""
        while self._days > 0:
            try:
                expired = await asyncio.to_thread(retention.delete_expired, self._store, self._days)
                if expired is not None and expired.deleted:
                    log.info(
                        "retention deleted=%d before=%s", expired.deleted, expired.horizon.date()
                    )
            except Exception as exc:  # the store may be briefly away; try at the next round
                log.warning("retention failed error=%r", exc)
            await asyncio.sleep(self._every_s)
