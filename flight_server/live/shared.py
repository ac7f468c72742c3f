"""Work that thousands of subscribers would each repeat on one update, done once.

The hub offers one table per group of subscriptions to every member (group.py).
A member past its snapshot takes that very table, finds every row newer than
what it holds, and sends it whole: the same checks, the same projection and the
same Arrow IPC bytes as every other member. At ten thousand subscriptions that
repeated work, not the update itself, was what held updates back.

`derived(table, name, compute)` computes such a value once per table object and
hands the same value to every caller. An entry keeps its table alive, so the
table's id cannot be reused by another object while the entry is kept. This is
a bounded cache of results keyed by object identity, not configuration.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import pyarrow as pa

__all__ = ["derived"]

T = TypeVar("T")

# Entries kept: a few values for each of the last updates, across every group; and a
# bound on the bytes they keep alive (a snapshot's batches pass through here too).
_ENTRIES = 1024
_BYTES = 64 << 20


class _Memo:
    def __init__(self, size: int, max_bytes: int) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[object, object, int]] = OrderedDict()

    def get(self, anchor: object, name: Hashable, compute: Callable[[], T]) -> T:
        key = (id(anchor), name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is anchor:
                self._entries.move_to_end(key)
                return entry[1]  # type: ignore[return-value]
        value = compute()  # outside the lock: two threads may both compute, both right
        cost = _nbytes(anchor) + _nbytes(value)
        if cost > self._max_bytes:
            return value  # too big to keep: whoever asks again computes it again
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes += cost - (old[2] if old is not None else 0)
            self._entries[key] = (anchor, value, cost)
            while len(self._entries) > self._size or self._bytes > self._max_bytes:
                self._bytes -= self._entries.popitem(last=False)[1][2]
        return value


def _nbytes(value: object) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return getattr(value, "nbytes", 0) if isinstance(value, (pa.Table, pa.RecordBatch)) else 0


_MEMO = _Memo(_ENTRIES, _BYTES)


def derived(anchor: object, name: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, a value of `anchor` alone (which must not change), computed once
    for every caller that asks with the same anchor object and `name`."""
    return _MEMO.get(anchor, name, compute)
