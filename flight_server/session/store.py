"""Flight sessions held by one server process: a few options per client session.

A session is keyed by its owner (the authenticated user) and the id its cookie
carries, so one user can never read or change another's session whatever id it
sends. Everything is bounded: at most `max_sessions` sessions (the least
recently used goes first), only the options the server knows (so a handful per
session), and a session idle for `idle_timeout_s` is forgotten.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

__all__ = ["SessionStore"]

Key = tuple[str, str]  # (owner, session id)


class SessionStore:
    def __init__(
        self,
        max_sessions: int,
        idle_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_sessions = max_sessions
        self._idle_timeout_s = idle_timeout_s
        self._clock = clock
        # key -> (last used, options); oldest use first.
        self._sessions: collections.OrderedDict[Key, tuple[float, dict[str, str]]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def options(self, key: Key) -> dict[str, str]:
        """The options set in session `key` (none if it is unknown or expired)."""
        with self._lock:
            found = self._live(key)
            return dict(found) if found is not None else {}

    def update(self, key: Key, changed: dict[str, str | None]) -> None:
        """Set (a value) or reset (None) options of session `key`, creating it."""
        with self._lock:
            options = self._live(key)
            if options is None:
                options = {}
            for name, value in changed.items():
                if value is None:
                    options.pop(name, None)
                else:
                    options[name] = value
            self._sessions[key] = (self._clock(), options)
            self._sessions.move_to_end(key)
            while len(self._sessions) > self._max_sessions:
                self._sessions.popitem(last=False)

    def close(self, key: Key) -> None:
        with self._lock:
            self._sessions.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._sessions)

    def _live(self, key: Key) -> dict[str, str] | None:
        """Session `key`'s options, marked used now; None if unknown or expired."""
        self._expire()
        found = self._sessions.get(key)
        if found is None:
            return None
        self._sessions[key] = (self._clock(), found[1])
        self._sessions.move_to_end(key)
        return found[1]

    def _expire(self) -> None:
        oldest = self._clock() - self._idle_timeout_s
        while self._sessions:
            key, (used, _) = next(iter(self._sessions.items()))
            if used >= oldest:
                break
            del self._sessions[key]
