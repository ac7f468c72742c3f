"""Keep the embedded nats-server running: when it exits on its own, start it again.

It comes back on the same port, JetStream store and logins, so flightdeck's
connection (and any producer's) reconnects by itself and nothing stored is
lost. Each restart is logged with the exit code; a server that keeps dying is
restarted less and less often (doubling waits, up to `max_delay`), so a
broken one costs a line now and then rather than a busy loop.
"""

from __future__ import annotations

import logging
import threading
import time

from .nats_process import NatsProcess, NatsStartError

__all__ = ["NatsSupervisor"]

log = logging.getLogger("flightdeck.nats-server")


class NatsSupervisor:
    """`start()` starts the process and watches it; `stop()` stops both."""

    def __init__(
        self,
        process: NatsProcess,
        *,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
        stable_after: float = 60.0,
    ) -> None:
        self.process = process
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._stable_after = stable_after  # up this long: the next exit starts backoff afresh
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a restart and stop() never interleave
        self._thread = threading.Thread(target=self._watch, name="flightdeck-nats-watch")
        self.restarts = 0

    @property
    def url(self) -> str:
        return self.process.url

    def start(self) -> NatsSupervisor:
        self.process.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self.process.stop()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        # The restarted nats-server is this thread's child, and PDEATHSIG fires
        # when the forking *thread* ends: so this thread lives until stop().
        delay = self._first_delay
        while not self._stopping.is_set():
            began = time.monotonic()
            code = self.process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - began >= self._stable_after:
                delay = self._first_delay
            reason = f"exited code={code}"
            last = " | ".join(self.process.last_lines(1))
            while True:
                log.warning(
                    "nats-server %s; restarting in %.1f s url=%s last_log=%r",
                    reason,
                    delay,
                    self.process.url,
                    last,
                )
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, self._max_delay)
                failure = self._restart()
                if failure is None:
                    break
                reason, last = "restart failed", failure

    def _restart(self) -> str | None:
        """Start it again; None, or why it would not start."""
        with self._lock:
            if self._stopping.is_set():
                return None
            try:
                self.process.start()
            except NatsStartError as exc:
                return str(exc).splitlines()[-1] if str(exc) else "no output"
        self.restarts += 1
        log.info("nats-server restarted url=%s restarts=%d", self.process.url, self.restarts)
        return None
