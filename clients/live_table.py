"""`flightdeck.LiveTable`: a pyarrow Table kept equal to a query of a live view.

A daemon thread follows the subscription and resumes it from its cursor after a
disconnect (with backoff, on a new connection); the server answers a cursor it
no longer has with `resync` and a fresh snapshot, which replaces the rows only
once complete (live_rows.py). So `.table` is always a whole state as of one
cursor: it equals `SELECT … WHERE <where> [ORDER BY … LIMIT N]` as of then.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .errors import Error, NotFoundError, QueryError, TimedOut, Unauthorized
from .live_request import live_request
from .live_rows import Change, LiveRows

if TYPE_CHECKING:
    import pandas
    import polars

    from .client import Client, LiveMessage, LiveSubscription

__all__ = ["BUILT_IN_KEYS", "Change", "LiveTable"]

# flight_server/live/exchange.py names a stream's key columns in its schema metadata.
_KEYS_METADATA = "flightdeck.keys"
# The built-in views' key columns (views/live_views.LIVE_KEYS; a test pins them equal).
# Any other view's (a rollup: its time column and dimensions) come with its stream.
BUILT_IN_KEYS: dict[str, tuple[str, ...]] = {
    "va_pageview_aggregate": ("page_url", "date"),
    "va_pageview_hourly": ("page_url", "hour"),
}
# Refusals that a retry cannot cure: the request itself is wrong or not allowed.
_FATAL = (QueryError, NotFoundError, Unauthorized)
_FIRST_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 5.0
_log = logging.getLogger(__name__)

Listener = Callable[[Change], Any]


class LiveTable:
    """The rows of `view` (filtered by `where`, or its `top` N), kept live.

    Returns at once; `.table` fills in when the first snapshot is complete
    (`wait_ready()` waits for it). `on_change(callback)` calls `callback(Change)`
    on the background thread after each change. `keys`: the view's key columns,
    needed for a rollup (its time column and dimensions). `close()` (or leaving a
    `with` block) stops it. A refusal (bad `where`, unknown view, no rights)
    stops it too and is raised by `wait_*`, and kept as `.error`.
    """

    def __init__(
        self,
        client: Client,
        view: str,
        *,
        where: dict[str, Any] | None = None,
        top: dict[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        min_interval_ms: int = 0,
        keys: Sequence[str] | None = None,
    ) -> None:
        self.view = view
        # A rollup's keys (its time column and dimensions) come with the first stream.
        self.keys = tuple(keys or BUILT_IN_KEYS.get(view, ()))
        self._client = client
        columns = list(columns) if columns is not None else None
        if columns is not None:  # the keys are needed to place each row
            columns = [*self.keys, *(c for c in columns if c not in self.keys)]
        self._request = dict(where=where, top=top, columns=columns, min_interval_ms=min_interval_ms)
        live_request(view, **self._request)  # a bad `where` is refused here, not in the thread
        self._rows = LiveRows(self.keys, top)
        self._changed = threading.Condition()
        self._listeners: list[Listener] = []
        self._stopping = threading.Event()
        self._subscription: LiveSubscription | None = None
        self.cursor: int | None = None
        self.lifetime: str | None = None
        self.error: Error | None = None
        self.resumes = 0  # streams opened after the first: disconnects survived
        self._thread = threading.Thread(target=self._run, name=f"LiveTable {view}", daemon=True)
        self._thread.start()

    # -- reading ---------------------------------------------------------------

    @property
    def table(self) -> pa.Table:
        """The rows now: one consistent Table, sorted by key (a top-N: by its order)."""
        return self._rows.table()

    @property
    def ready(self) -> bool:
        """Whether a first snapshot is complete (before it, `.table` is empty)."""
        return self._rows.ready

    @property
    def version(self) -> int:
        """Grows by one per change: compare to tell whether `.table` moved."""
        return self._rows.version

    def to_pandas(self) -> pandas.DataFrame:
        return self.table.to_pandas()

    def to_polars(self) -> polars.DataFrame:
        try:
            import polars
        except ImportError as exc:
            raise ImportError(
                "LiveTable.to_polars needs Polars, which is not installed: pip install polars"
            ) from exc
        return polars.from_arrow(self.table)

    def on_change(self, callback: Listener) -> Listener:
        """Call `callback(change)` after each change, on the background thread (keep it
        short; it delays the next message). Returns `callback`, so it can decorate."""
        self._listeners.append(callback)
        return callback

    # -- waiting ---------------------------------------------------------------

    def wait_for(self, predicate: Callable[[pa.Table], bool], timeout: float = 30.0) -> pa.Table:
        """The first `.table` (after the first snapshot) for which `predicate` holds;
        TimedOut after `timeout` seconds, or the refusal that stopped this table."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if self.error is not None:
                    raise self.error
                if self.ready:
                    table = self.table
                    if predicate(table):
                        return table
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimedOut(
                        f"LiveTable({self.view!r}): the condition did not hold within "
                        f"{timeout} s (cursor {self.cursor}, {self.table.num_rows} rows)"
                    )
                self._changed.wait(left)

    def wait_ready(self, timeout: float = 30.0) -> pa.Table:
        """The table once its first snapshot is complete."""
        return self.wait_for(lambda _table: True, timeout)

    def wait_until_cursor(self, cursor: int, timeout: float = 30.0) -> pa.Table:
        """The table once it reflects every update up to `cursor` (e.g. a later
        subscription's, or a heartbeat's)."""
        return self.wait_for(lambda _t: self.cursor is not None and self.cursor >= cursor, timeout)

    # -- lifecycle -------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Stop following: end the stream and the thread."""
        self._stopping.set()
        subscription = self._subscription
        if subscription is not None:
            with contextlib.suppress(Exception):
                subscription.cancel()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> LiveTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "ready" if self.ready else "filling"
        return f"<LiveTable {self.view} {state} rows={self.table.num_rows} cursor={self.cursor}>"

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                if self._follow():
                    failures = 0  # it got somewhere: the next break resumes at once
            except _FATAL as exc:
                self._stop_with(exc)
                return
            except (Error, pa.ArrowException) as exc:
                _log.info("LiveTable %s: stream broke (%s); resuming", self.view, exc)
            finally:
                self._rows.abandon_snapshot()
            if self._stopping.wait(_backoff(failures)):
                return
            failures += 1
            self.resumes += 1

    def _follow(self) -> bool:
        """One stream, until it ends; whether it brought anything."""
        request = live_request(
            self.view, **self._request, cursor=self.cursor, lifetime=self.lifetime, messages=2
        )
        request["snapshot"] = self.cursor is None
        moved = False
        with self._client.exchange(request, new_connection=True) as subscription:
            self._subscription = subscription
            if self._stopping.is_set():
                return moved
            self._take_keys(subscription.schema)
            self._rows.set_schema(subscription.schema)
            for message in subscription:
                self._take(message)
                moved = True
        return moved

    def _take_keys(self, schema: pa.Schema) -> None:
        """The view's key columns, from the stream's schema metadata when not given."""
        if self.keys:
            return
        named = (schema.metadata or {}).get(_KEYS_METADATA.encode())
        if named is None:  # a server from before keys were sent
            raise QueryError(
                f"LiveTable({self.view!r}) needs the view's key columns: pass keys=(...) "
                "(a rollup's time column and dimensions)",
                rule="live-keys",
                view=self.view,
            )
        self.keys = tuple(json.loads(named))
        self._rows.set_keys(self.keys)

    def _take(self, message: LiveMessage) -> None:
        kind, rows, cursor, _detail = message
        if kind == "resync" or (kind == "snapshot" and not self._rows.gathering):
            self._rows.begin_snapshot()
        change = self._rows.apply(kind, rows, cursor)
        # A cursor counts once what comes before it is whole: not mid-snapshot.
        if kind != "resync" and not self._rows.gathering:
            with self._changed:
                self.cursor = cursor
                self.lifetime = message.detail.get("lifetime", self.lifetime)
                self._changed.notify_all()
        if change is not None:
            self._tell(change)

    def _tell(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                _log.exception("LiveTable %s: a listener failed", self.view)

    def _stop_with(self, exc: Error) -> None:
        with self._changed:
            self.error = exc
            self._changed.notify_all()


def _backoff(failures: int) -> float:
    """Seconds before the next try: doubling from 0.1 s up to 5 s, with jitter so that
    many clients of a restarted server do not all return at once."""
    if failures == 0:
        return _FIRST_BACKOFF_S * random.random()
    return min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2**failures) * (0.5 + random.random() / 2)
