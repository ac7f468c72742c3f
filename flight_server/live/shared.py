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

__all__ = ["derived"]

T = TypeVar("T")

# Entries kept: a few values for each of the last updates, across every group.
_ENTRIES = 1024


class _Memo:
    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[object, object]] = OrderedDict()

    def get(self, anchor: object, name: Hashable, compute: Callable[[], T]) -> T:
        key = (id(anchor), name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is anchor:
                self._entries.move_to_end(key)
                return entry[1]  # type: ignore[return-value]
        value = compute()  # outside the lock: two threads may both compute, both right
        with self._lock:
            self._entries[key] = (anchor, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value


_MEMO = _Memo(_ENTRIES)


def derived(anchor: object, name: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, a value of `anchor` alone (which must not change), computed once
    for every caller that asks with the same anchor object and `name`."""
    return _MEMO.get(anchor, name, compute)
