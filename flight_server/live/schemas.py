"""The live views' schemas, kept for a while instead of read from the catalog per subscribe.

A thousand dashboards reconnecting after a restart would otherwise run a thousand
catalog queries (one schema query per view each) before the first byte flows.
Schemas change only with migrations, so a short lifetime bounds how long a
changed view is seen with its old columns; a request the cached schemas refuse
is checked once more against fresh ones (at most once a second), so a view or
column added a moment ago is not refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pyarrow as pa
from flightdeck.views import InvalidQuery, Store, describe
from flightdeck.views.live_views import live_keys

from .request import Subscription, parse_subscription

__all__ = ["LiveSchemas"]

_RECHECK_S = 1.0  # a refused request reads the catalog again when the cache is this old


class LiveSchemas:
    def __init__(
        self, store: Store, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()  # one catalog read at a time, shared by all who wait
        self._schemas: dict[str, pa.Schema] = {}
        self._keys: dict[str, tuple[str, ...]] = {}
        self._read_at: float | None = None

    def parse(self, command: bytes) -> tuple[Subscription, pa.Schema]:
        """`command` checked against the live views' schemas; the chosen view's schema."""
        schemas, keys = self._current(max_age=self._ttl)
        try:
            subscription = parse_subscription(command, schemas, keys)
        except InvalidQuery:
            fresher, keys = self._current(max_age=_RECHECK_S)
            if fresher is schemas:  # read a moment ago: the refusal stands
                raise
            schemas = fresher
            subscription = parse_subscription(command, schemas, keys)
        return subscription, schemas[subscription.view]

    def _current(self, max_age: float) -> tuple[dict[str, pa.Schema], dict[str, tuple[str, ...]]]:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= max_age:
                self._keys = live_keys(self._store)
                views = describe(self._store)
                self._schemas = {v.name: v.schema for v in views if v.name in self._keys}
                self._read_at = now
            return self._schemas, self._keys
