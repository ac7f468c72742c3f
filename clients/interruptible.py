"""Run a blocking pyarrow call so that Ctrl-C still reaches the caller at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["interruptible"]

T = TypeVar("T")

_POLL_S = 0.1


def interruptible(work: Callable[[], T]) -> T:
    """`work()` run in a thread: pyarrow blocks in C++, where Python would see a Ctrl-C
    only once the call returned. KeyboardInterrupt here leaves the thread running."""
    result: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:
            failed.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(_POLL_S)
    if failed:
        raise failed[0]
    return result[0]
