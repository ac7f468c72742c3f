"""A PostgreSQL primary with a streaming standby on loopback, as an operator sets one up.

The primary allows replication logins; the standby is `pg_basebackup -R` of it (the
`-R` writes `standby.signal` and `primary_conninfo`), started on a port of its own.
`synchronous()` makes the primary wait for the standby's flush before it acknowledges
a commit, so an acknowledged commit survives the primary's death.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg

from benchmarks.postgres_server import FAST, PG_BIN, PostgresServer, _as_postgres
from tests.services import wait_for

# The suite's speed settings, but a commit waits for the standby (synchronous_commit on).
PRIMARY = {**FAST, "synchronous_commit": "on", "wal_level": "replica", "max_wal_senders": "4"}


class Primary(PostgresServer):
    def start(self) -> Primary:
        super().start()
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        self.sql("SELECT pg_reload_conf()")
        return self

    def sql(self, text: str, database: str = "postgres") -> list[tuple]:
        with pg.connect(self.url(database), autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(text)
            return cursor.fetchall() if cursor.description else []

    def synchronous(self) -> None:
        """Acknowledge a commit only once the standby has flushed it."""
        self.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        self.sql("SELECT pg_reload_conf()")
        assert wait_for(lambda: self.sync_standbys() == 1, timeout=60)

    def sync_standbys(self) -> int:
        rows = self.sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
        return rows[0][0]

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend, as a machine that loses power."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        group = [pid, *_children(pid)]
        for each in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)
        assert wait_for(lambda: not any(_running(p) for p in group), timeout=30)


class Standby(PostgresServer):
    """A streaming standby of `primary`: a base backup instead of initdb."""

    def __init__(self, primary: Primary) -> None:
        super().__init__(FAST, prefix="flightdeck-standby-")
        self.primary = primary

    def start(self) -> Standby:
        backup = [str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port)]
        backup += ["-U", "postgres", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast"]
        subprocess.run(_as_postgres(backup), check=True, capture_output=True, timeout=120)
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c hot_standby=on"
        options += " " + " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options]
        ctl += ["-l", str(self.root / "log"), "-w", "-t", "60", "start"]
        subprocess.run(_as_postgres(ctl), check=True, capture_output=True, timeout=120)
        return self

    def promote(self) -> None:
        promote = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote"]
        subprocess.run(_as_postgres(promote), check=True, capture_output=True, timeout=120)

    def sql(self, text: str, database: str = "postgres") -> list[tuple]:
        return Primary.sql(self, text, database)  # type: ignore[arg-type]


@contextlib.contextmanager
def primary_and_standby() -> Iterator[tuple[Primary, Standby]]:
    """Both started, the standby streaming; both stopped (and removed) after."""
    primary = Primary(PRIMARY, prefix="flightdeck-primary-")
    standby = Standby(primary)
    try:
        primary.start()
        standby.start()
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
