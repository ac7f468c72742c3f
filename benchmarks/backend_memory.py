"""The PostgreSQL backends' memory during a read, to set beside the server's RSS.

A flightdeck server on PostgreSQL holds only the Arrow batches in flight; the
query's own memory (work_mem, the tuples read, the shared buffers it touches)
lives in the postgres backend process serving its connection. Comparing the
server's RSS on DuckDB (store inside) with its RSS on PostgreSQL (store outside)
is only like for like with that backend's memory added.

RSS counts every shared_buffers page the backend touched in full, although all
backends share them; PSS (/proc/PID/smaps_rollup) divides each shared page by
the processes mapping it, so it is reported too. Both include shared library
pages, as the server's VmHWM does.
"""

from __future__ import annotations

import threading

from .services import proc_kb, reset_peak_rss

__all__ = ["BackendSampler", "backend_pid", "server_backends"]

_OTHERS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def backend_pid(conn) -> int:
    """The backend pid of a DB-API connection (ADBC or psycopg)."""
    cursor = conn.cursor()
    try:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])
    finally:
        cursor.close()


def server_backends(monitor, exclude: set[int]) -> list[int]:
    """Backends of this database other than the monitor's own and `exclude` (the
    benchmark client's direct connections): the flightdeck server's pool."""
    cursor = monitor.cursor()
    try:
        cursor.execute(_OTHERS)
        return sorted(int(row[0]) for row in cursor.fetchall() if int(row[0]) not in exclude)
    finally:
        cursor.close()


class BackendSampler:
    """Every `interval` s, the summed RSS and PSS of `pids`; their VmHWM, reset at start.

    `peak` holds the largest sums seen, in MB: `rss`, `pss`, and `hwm` (the sum of each
    backend's own high-water mark, exact where sampling may miss a short peak).
    """

    def __init__(self, pids: list[int], interval: float = 0.05) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, float | None] = {"rss": None, "pss": None, "hwm": None}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss = [proc_kb(p, "VmRSS") for p in self.pids]
        pss = [proc_kb(p, "Pss", "smaps_rollup") for p in self.pids]
        for key, values in (("rss", rss), ("pss", pss)):
            if values and None not in values:
                total = sum(values) / 1024  # type: ignore[arg-type]
                self.peak[key] = max(self.peak[key] or 0.0, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> BackendSampler:
        for pid in self.pids:  # as for the server: VmHWM back to the current RSS
            reset_peak_rss(pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        hwm = [proc_kb(p, "VmHWM") for p in self.pids]
        if hwm and None not in hwm:
            self.peak["hwm"] = sum(hwm) / 1024  # type: ignore[arg-type]
