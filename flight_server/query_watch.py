"""Watch a running query's call, and interrupt the store the moment its client is gone.

The thread that serves a DoGet is blocked in the store for as long as the
backend computes: PostgreSQL's execute returns only when the first rows are
ready, and an aggregate's only batch comes at its end. Nothing on that thread
can notice a cancel or a disconnect meanwhile, so a watcher per query polls the
call instead and fires the query's Interrupt, which stops the backend at once.
"""

from __future__ import annotations

import threading

import pyarrow.flight as flight
from flightdeck.views import Interrupt

__all__ = ["QueryWatch"]

_POLL_S = 0.1


class QueryWatch:
    """Fire `interrupt` when `context`'s call is cancelled (a client cancel, a
    disconnect, the client's deadline), until `stop()`.

    The call's context is valid only while the call lasts: `stop()` is called as
    the call ends, and once it returns the watcher never touches the context.
    """

    def __init__(self, context: flight.ServerCallContext, interrupt: Interrupt) -> None:
        self._context = context
        self._interrupt = interrupt
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="query-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopped.wait(_POLL_S):
            with self._lock:
                if self._stopped.is_set():
                    return
                if not self._context.is_cancelled():
                    continue
            self._interrupt.fire()
            return

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()

    def __enter__(self) -> QueryWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
