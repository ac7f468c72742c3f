"""Real services for tests and benchmarks: a throwaway PostgreSQL 15 on loopback.

PostgreSQL refuses to run as root, so when we are root the server runs as the
`postgres` user (runuser). Set FLIGHTDECK_TEST_PG_URL to use a server you run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path(os.environ.get("FLIGHTDECK_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresServer:
    """initdb + pg_ctl on a free port in a temporary folder; `url(db)` to connect."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="flightdeck-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")

    def start(self) -> PostgresServer:
        run = dict(check=True, capture_output=True, text=True)
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            **run,
        )
        # The admin (postgres) is trusted; every other role must give its password over
        # TCP, so the reader role's login is tested the way a real server checks it.
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.root / "log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            **run,
        )
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

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
            subprocess.run(
                _as_postgres(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
                ),
                check=True,
                capture_output=True,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields an admin URL to a PostgreSQL server for the duration of the block."""
    external = os.environ.get("FLIGHTDECK_TEST_PG_URL")
    if external:
        yield external
        return
    server = PostgresServer().start()
    try:
        yield server.url()
    finally:
        server.stop()
