"""flightdeck's connection to NATS: who it connects as, and what it says while NATS is away.

A server may start before its NATS: told to reconnect forever, nats-py keeps
trying an address that refuses even on the first connect, reporting each
failure to `_error`; whatever still makes `nats.connect` give up is retried
here (ingest/backoff.py). An outage is logged when it starts, now and then
while it lasts (LogLimit), and when it ends, not at every attempt.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nats
from flightdeck.ingest.backoff import Retry, until_done

from .log_limit import LogLimit
from .nats_auth import INTERNAL_INBOX, NatsLogin

__all__ = ["NatsConnection"]

log = logging.getLogger("flightdeck.nats")


class NatsConnection:
    def __init__(
        self, url: str, *, login: NatsLogin | None = None, creds: Path | None = None
    ) -> None:
        """`url`: one URL or a cluster's, comma-separated. `login`: flightdeck's own user
        on the embedded nats-server; else `creds`, a credentials file for an external
        NATS, or neither when the URL says it all."""
        self._url = url
        self._login = login
        self._creds = creds
        self._nc: nats.NATS | None = None
        self._closing = False
        self._errors = LogLimit()

    def status(self) -> str:
        """Thread-safe, read-only: "connected" or "disconnected" (for the health action)."""
        nc = self._nc
        return "connected" if nc is not None and nc.is_connected else "disconnected"

    async def connect(self) -> nats.NATS:
        """Connect, however long NATS takes to be there; afterwards nats-py reconnects."""

        async def attempt() -> nats.NATS:
            self._nc = await nats.connect(
                self._url.split(","),  # a cluster: nats://a:4222,nats://b:4222
                name="flightdeck",
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                error_cb=self._error,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
                **self._credentials(),
            )
            log.info("nats connected url=%s", self._url)
            return self._nc

        def say(retry: Retry, exc: Exception) -> None:
            log.warning(
                "nats unreachable, retrying url=%s failures=%d error=%r",
                self._url,
                retry.failures,
                exc,
            )

        return await until_done(attempt, say, (OSError, nats.errors.Error, TimeoutError))

    def closing(self) -> None:
        """We are about to close it: what NATS reports from now on is no news."""
        self._closing = True

    async def close(self) -> None:
        self.closing()
        if self._nc is not None:
            await self._nc.close()

    def _credentials(self) -> dict:
        if self._login is not None:  # the embedded nats-server: our own user and inbox
            return {
                "user": self._login.user,
                "password": self._login.password,
                "inbox_prefix": INTERNAL_INBOX,
            }
        # An external NATS: its own accounts govern who may publish events and read updates.
        return {"user_credentials": str(self._creds)} if self._creds else {}

    async def _disconnected(self) -> None:
        if not self._closing:
            log.warning("nats disconnected; reconnecting")
            self._errors.admit()  # the errors of reconnect attempts that follow are this news

    async def _reconnected(self) -> None:
        log.info("nats reconnected (%d errors while away not logged)", self._errors.settle())

    async def _error(self, exc: Exception) -> None:
        held = self._errors.admit()
        if held is not None and not self._closing:
            more = f" ({held} more since the last such line)" if held else ""
            log.warning("nats error=%r%s", exc, more)
