"""A query that keeps a backend busy for minutes, and the backend's own view of it.

PostgreSQL: pg_stat_activity (the query's backend is active, or not). DuckDB runs
in this process: its worker threads' CPU time, from this process's counters.
"""

from __future__ import annotations

import resource
import time

from tests.flight_server.pg_activity import active_queries

# Minutes of work on either backend, and nothing to send until the very end.
SIDE = {"duckdb": 400_000, "postgresql": 25_000}
AGGREGATE = (
    "SELECT max(a.g + b.g) AS m "
    "FROM generate_series(1, {side}) AS a(g), generate_series(1, {side}) AS b(g)"
)
IDLE_WITHIN_S = 1.0  # the bound: a cancelled query frees the backend within 1 s
_WINDOW_S = 0.2  # DuckDB's CPU is sampled over windows this long


def aggregate(backend: str) -> str:
    return AGGREGATE.format(side=SIDE[backend])


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_rate(window_s: float = _WINDOW_S) -> float:
    """CPU-seconds per second this process (server and DuckDB included) spends now."""
    before = _cpu_s()
    time.sleep(window_s)
    return (_cpu_s() - before) / window_s


def idle_rate(backend: str) -> float:
    """What this process spends before the query (DuckDB): in a long test session,
    threads of earlier tests (live hubs, NATS loops) keep a little of a core busy."""
    return cpu_rate(0.5) if backend == "duckdb" else 0.0


def busy(backend: str, db_url: str, idle: float = 0.0) -> bool:
    if backend == "postgresql":
        return active_queries(db_url, "generate_series") > 0
    return cpu_rate() > idle + 0.5  # DuckDB's workers are busy


def seconds_until_idle(backend: str, db_url: str, since: float, idle: float = 0.0) -> float:
    """Seconds from `since` (time.monotonic()) until the backend runs the query no
    more; infinity if it still does 5 s later. For DuckDB, the end of the first
    quiet sampling window: an upper bound."""
    deadline = since + 5.0
    while time.monotonic() < deadline:
        if backend == "postgresql":
            if active_queries(db_url, "generate_series") == 0:
                return time.monotonic() - since
            time.sleep(0.02)
        elif cpu_rate() < idle + 0.15:
            return time.monotonic() - since
    return float("inf")
