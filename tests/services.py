"""The suite's PostgreSQL (the harness shared with the benchmarks) and waiting on a condition.

Set FLIGHTDECK_TEST_PG_URL to use a server you run instead of a throwaway one.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from benchmarks.postgres_server import FAST, PostgresServer, free_port

__all__ = ["free_port", "postgres_server", "throwaway_postgres", "wait_for"]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def throwaway_postgres() -> PostgresServer:
    """A PostgreSQL server with the suite's speed settings, not yet started."""
    return PostgresServer(FAST)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields an admin URL to a PostgreSQL server for the duration of the block."""
    external = os.environ.get("FLIGHTDECK_TEST_PG_URL")
    if external:
        yield external
        return
    with throwaway_postgres() as server:
        yield server.url()
