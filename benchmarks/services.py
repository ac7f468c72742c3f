"""The processes a benchmark run starts for itself, all on loopback, all stopped afterwards.

flightdeck `serve` processes and the in-memory Flight server that is the transport
ceiling, besides PostgreSQL (postgres_server.py, shared with the tests) and
nats-server with JetStream (flightdeck's own launcher, NatsProcess).
Servers run as subprocesses so that client and server never share a GIL, and so
that the server's memory can be read from /proc.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = [
    "FlightdeckProcess",
    "MemoryFlightProcess",
    "RssSampler",
    "peak_rss_mb",
    "proc_kb",
    "reset_peak_rss",
    "rss_file_mb",
    "rss_mb",
]

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


class IngestWorkerProcess(_ChildProcess):
    """`flightdeck ingest`: one more NATS worker on the same PostgreSQL store and stream.

    It serves no port; `port` is the NATS server's, read from its "ingesting" line."""

    ready = re.compile(r"ingesting nats=nats://[\d.]+:(\d+)")

    def __init__(self, db: str, nats_url: str) -> None:
        cmd = [sys.executable, "-m", "flightdeck.cli", "ingest", "--db", db, "--nats", nats_url]
        # Retention off, as for the server: the stream's days are years old.
        cmd += ["--raw-retention-days", "0", "--log-level", "INFO"]
        super().__init__(cmd, "flightdeck ingest")


class MemoryFlightProcess(_ChildProcess):
    """The transport ceiling: a plain pyarrow.flight server holding one table in memory."""

    ready = re.compile(r"memory-flight port=(\d+)")

    def __init__(self, arrow_file: Path) -> None:
        cmd = [sys.executable, "-m", "benchmarks.memory_server", str(arrow_file)]
        super().__init__(cmd, "in-memory Flight server")


def proc_kb(pid: int, field: str, file: str = "status") -> int | None:
    """A kB field of /proc/PID/status (or of another /proc/PID file in that format,
    e.g. smaps_rollup); None when the process or field is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_file_mb(pid: int) -> float | None:
    """Resident file-backed pages (mostly shared libraries), which VmRSS/VmHWM include."""
    kb = proc_kb(pid, "RssFile")
    return None if kb is None else kb / 1024


def rss_mb(pid: int) -> float | None:
    kb = proc_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mb(pid: int) -> float | None:
    """The process's resident high-water mark since start or since `reset_peak_rss`."""
    kb = proc_kb(pid, "VmHWM")
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
