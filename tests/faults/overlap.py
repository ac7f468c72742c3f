"""How much several processes' commits overlap in time: read from their DEBUG logs,
and sampled from PostgreSQL's view of its sessions.

The NATS worker logs `committed accepted=...` after each commit; a process's
log lines start with `ts=<asctime>`. A window (a second, a tenth) in which two
or more processes committed is one they spent committing side by side.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import defaultdict

import adbc_driver_postgresql.dbapi as pg

__all__ = ["WriterSampler", "commit_overlap", "commit_times"]

_COMMITTED = re.compile(r"^ts=(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*committed accepted=")


def commit_times(lines: list[str]) -> list[dt.datetime]:
    """When the process logged each of its commits."""
    found = (_COMMITTED.match(line) for line in lines)
    return [dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") for m in found if m]


def commit_overlap(logs: dict[str, list[str]]) -> str:
    """One line per window size: of the windows with a commit, how many had commits
    from two or more processes; and each process's commit count."""
    times = {name: commit_times(lines) for name, lines in logs.items()}
    out = ["commits per process: " + ", ".join(f"{n}={len(t)}" for n, t in times.items())]
    for window in (1.0, 0.1):
        who: dict[int, set[str]] = defaultdict(set)
        for name, stamps in times.items():
            for stamp in stamps:
                who[int(stamp.timestamp() / window)].add(name)
        shared = sum(1 for names in who.values() if len(names) >= 2)
        out.append(f"{window:g} s windows with commits: {len(who)}, with 2+ processes: {shared}")
    return "\n".join(out)


class WriterSampler:
    """Samples PostgreSQL's sessions on the test's database every `every_s`: how many
    write at that moment (not waiting on a lock, not a query of a view), and how many
    wait for the fold turn (`tb_ingest_turn`), the append gate (`tb_ingest_gate`), or
    a row another transaction holds (a session lock, or an event id it appended)."""

    def __init__(self, db_url: str, every_s: float = 0.1) -> None:
        self._db_url = db_url
        self._every_s = every_s
        self._stop = threading.Event()
        # (writing, waiting for the turn, for the gate, for a row)
        self.samples: list[tuple[int, int, int, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> WriterSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        with pg.connect(self._db_url, autocommit=True) as conn, conn.cursor() as cursor:
            while not self._stop.wait(self._every_s):
                cursor.execute(_SESSIONS)
                self.samples.append(tuple(cursor.fetchone()))

    def stop(self) -> str:
        """Stop sampling (again is harmless); what the samples say."""
        self._stop.set()
        self._thread.join(10)
        busy = [s for s in self.samples if any(s)]
        two = sum(1 for writing, *_ in busy if writing >= 2)
        turn = sum(1 for _, waiting, _, _ in busy if waiting)
        gate = sum(1 for _, _, waiting, _ in busy if waiting)
        row = sum(1 for *_, waiting in busy if waiting)
        mean = sum(w for _, w, _, _ in busy) / max(1, len(busy))
        return (
            f"samples with a writer: {len(busy)}; 2+ writing at once: {two}; "
            f"1+ waiting for the fold turn: {turn} (mean {mean:.1f} waiting); "
            f"1+ waiting for the append gate: {gate}; 1+ waiting for a row: {row}"
        )


_SESSIONS = """
WITH waits AS (
  SELECT DISTINCT l.pid,
         CASE WHEN l.locktype IN ('transactionid', 'tuple') THEN 'row'
              ELSE l.relation::regclass::text END AS rel
  FROM pg_locks l
  WHERE NOT l.granted AND (l.relation IS NOT NULL OR l.locktype = 'transactionid')
)
SELECT
  count(*) FILTER (WHERE a.wait_event_type IS DISTINCT FROM 'Lock'
                   AND a.backend_type = 'client backend'
                   AND a.query !~* '^\\s*(SELECT|WITH)'),
  count(*) FILTER (WHERE w.rel = 'tb_ingest_turn'),
  count(*) FILTER (WHERE w.rel = 'tb_ingest_gate'),
  count(*) FILTER (WHERE w.rel = 'row')
FROM pg_stat_activity a LEFT JOIN waits w ON w.pid = a.pid
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.state = 'active'
"""
