"""Snapshot reads for live subscriptions: identical ones share a read, and few run at once.

A storm of subscribers connecting together (every dashboard after a restart)
would otherwise run one query each, all at once. Requests with the same SQL
join the read of theirs that has not started yet, so each read serves everyone
who asked before it began. That keeps the exactness rule of docs/live.md: every
member registered with the hub before asking, so the read, which starts later,
reflects at least every update up to each member's cursor. A read that has
started takes no one new (it may predate their registration).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import pyarrow as pa
from flightdeck.views import Store

from .request import LIVE

__all__ = ["SnapshotReads"]

T = TypeVar("T")

# Snapshot reads (and resumes, top-N reads) at once: the store's other users come first.
_READERS = 4


class SnapshotReads:
    def __init__(self, store: Store, max_rows: int, readers: int = _READERS) -> None:
        """`max_rows`: rows a subscriber may hold (--live-held-rows); a read stops one
        past it, which is enough for the subscriber to learn it is over."""
        self._store = store
        self._max_rows = max_rows
        self._pool = ThreadPoolExecutor(readers, thread_name_prefix="live-snapshot")
        self._lock = threading.Lock()
        self._waiting: dict[str, Future[pa.Table]] = {}  # by SQL: reads not yet started
        self.reads = 0  # reads run so far (tests and metrics: how well requests coalesce)

    def rows(self, sql: str) -> Future[pa.Table]:
        """The rows of `sql`, each marked `LIVE`, from a read that starts after this call."""
        with self._lock:
            future = self._waiting.get(sql)
            if future is None:
                future = self._waiting[sql] = Future()
                self._pool.submit(self._read, sql, future)
            return future

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """A blocking start of a subscription (a resume's replay, a top-N's read), on
        the same few threads, so a storm of those is capped as well."""
        return self._pool.submit(job)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _read(self, sql: str, future: Future[pa.Table]) -> None:
        with self._lock:
            del self._waiting[sql]  # started: later requests need a later read
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(self._table(sql))
        except BaseException as exc:  # every waiter gets the store's reason
            future.set_exception(exc)

    def _table(self, sql: str) -> pa.Table:
        self.reads += 1
        batches, rows = [], 0
        with self._store.read(sql) as reader:
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > self._max_rows:
                    break
        table = pa.Table.from_batches(batches, reader.schema)
        return table.append_column(LIVE, pa.array([True] * table.num_rows, pa.bool_()))
