"""Freezing a real process with SIGSTOP, and knowing it is frozen.

kill() returns before the process has stopped: the kernel wakes one thread to take
the signal, and on a loaded machine another thread may first answer a request that
just arrived. A test that means "the server is silent" waits until every thread
shows as stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from tests.services import wait_for

__all__ = ["frozen"]


def _all_threads_stopped(pid: int) -> bool:
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            # The state follows the command name in parentheses, which may hold spaces.
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that exited meanwhile
        if state not in ("T", "t"):
            return False
    return True


@contextlib.contextmanager
def frozen(pid: int, timeout: float = 10.0) -> Iterator[None]:
    """SIGSTOP `pid` until the block ends; the block starts once every thread has stopped."""
    os.kill(pid, signal.SIGSTOP)
    try:
        assert wait_for(lambda: _all_threads_stopped(pid), timeout, interval=0.01), (
            f"process {pid} did not stop within {timeout} s"
        )
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
