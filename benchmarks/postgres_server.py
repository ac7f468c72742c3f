"""A throwaway PostgreSQL 15 on loopback, for the benchmarks and the test suite alike.

Debian's binaries (FLIGHTDECK_PG_BIN to use others) in a temporary folder, on a free
port. PostgreSQL refuses to run as root, so when we are root it runs as the `postgres`
user (runuser). It lives here rather than in tests/ because benchmarks, run as
`python -m benchmarks`, must not import tests; tests may import benchmarks.

What differs between the two is the server's settings, given to `PostgresServer`:
`FAST` for tests (no fsync, many short-lived databases), `DURABLE` for benchmarks
(as PostgreSQL ships, so every contender pays a production commit).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

PG_BIN = Path(os.environ.get("FLIGHTDECK_PG_BIN", "/usr/lib/postgresql/15/bin"))
_CAPTURED = dict(check=True, capture_output=True, text=True)

# Tests: a crash loses nothing worth keeping, and commits are the suite's main cost.
FAST: Mapping[str, str] = {
    # A suite's server holds hundreds of short-lived databases: the launcher would
    # start an autovacuum worker every naptime / databases seconds, on every one.
    "autovacuum": "off",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
# Benchmarks: fsync and synchronous_commit on, memory for the larger data sets and
# room for every contender's connections.
DURABLE: Mapping[str, str] = {
    "max_connections": "300",
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresServer:
    """initdb + pg_ctl on a free port in a temporary folder; `url(db)` to connect."""

    def __init__(self, settings: Mapping[str, str], prefix: str = "flightdeck-pg-") -> None:
        self.settings = dict(settings)
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")

    def start(self) -> PostgresServer:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(
                f"PostgreSQL 15 not found in {PG_BIN}: apt-get install postgresql-15 "
                "(or set FLIGHTDECK_PG_BIN)"
            )
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        subprocess.run(_as_postgres([*initdb, "-E", "UTF8", "--no-sync"]), **_CAPTURED)
        # The admin (postgres) is trusted; every other role must give its password over
        # TCP, so the reader role logs in the way a real server checks it.
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
        options += " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options]
        ctl += ["-l", str(self.root / "log"), "-w", "-t", "60", "start"]
        subprocess.run(_as_postgres(ctl), **_CAPTURED)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database `name` (dropped first if it exists); its admin URL."""
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(self.url(), autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            cursor.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def restart(self) -> None:
        """`pg_ctl restart -m fast` on the same folder and port (kept in postmaster.opts).

        `-l` matters: without it the new postmaster logs to pg_ctl's stdout, a pipe
        it keeps open, and waiting for pg_ctl would never end.
        """
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log")]
        command += ["-m", "fast", "-w", "-t", "60", "restart"]
        subprocess.run(
            _as_postgres(command),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            stop = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
            subprocess.run(_as_postgres(stop), check=True, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
