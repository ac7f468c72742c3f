"""Real processes to hurt: `flightdeck serve|ingest`, a nats-server we can SIGKILL.

Each process's log is drained by a thread, so a long test never blocks a
server on a full stderr pipe, and the lines are kept for failure messages.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from flightdeck.flight_server.nats_process import NatsProcess

from tests import nats_client
from tests.services import wait_for

CLI = [sys.executable, "-m", "flightdeck.cli"]


class Flightdeck:
    """`flightdeck ARGS` as a child process that can be started again after a SIGKILL."""

    def __init__(self, args: list[str], cwd: Path, ready: str = "serving location=") -> None:
        self.args = args
        self.cwd = cwd
        self.ready = ready
        self.lines: list[str] = []
        self.ready_line = ""
        self.kills = 0
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> str:
        """Start and wait for the ready line; returns it (it names the location)."""
        assert self._proc is None or self._proc.poll() is not None, "already running"
        proc = subprocess.Popen(
            [*CLI, *self.args],
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._proc = proc
        ready = threading.Event()
        found: list[str] = []

        def drain() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.lines.append(line.rstrip())
                if not found and self.ready in line:
                    found.append(line)
                    ready.set()
            ready.set()  # exited

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(timeout) or not found:
            self.kill()
            raise AssertionError(f"flightdeck {self.args[0]} did not start:\n{self.log()}")
        self.ready_line = found[0]
        return found[0]

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def location(self) -> str:
        return re.search(r"location=(grpc://\S+)", self.ready_line).group(1)

    @property
    def ready_nats_url(self) -> str:
        """The NATS address the ready line names: no credentials in it."""
        return re.search(r"nats=(nats://\S+)", self.ready_line).group(1)

    @property
    def nats_url(self) -> str:
        """The NATS address with flightdeck's own login when the NATS is the embedded one,
        as an operator inspecting or tuning streams and consumers would use it."""
        return nats_client.embedded_url(self.ready_nats_url, self.data_dir)

    def nats_credentials(self) -> dict[str, str]:
        """What `flightdeck nats-credentials` prints for this data dir, as a producer
        reads it: NATS_USER, NATS_PASSWORD, NATS_URL."""
        command = ["nats-credentials", "--data-dir", str(self.data_dir)]
        done = subprocess.run(
            [sys.executable, "-m", "flightdeck.cli", *command],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)

    @property
    def data_dir(self) -> Path:
        if "--data-dir" in self.args:
            return self.cwd / self.args[self.args.index("--data-dir") + 1]
        return self.cwd / "flightdeck-data"

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a power cut would; then wait until
        its children (the embedded nats-server, which PDEATHSIG stops) are gone too."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        children = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.kills += 1
        assert wait_for(lambda: not any(_alive(c) for c in children), timeout=30), (
            f"children {children} outlived their SIGKILLed parent"
        )

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL if it does not stop): the cleanup path."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self, last: int = 60) -> str:
        return "\n".join(self.lines[-last:])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


class KillableNats(NatsProcess):
    """A nats-server (JetStream on file storage) that can also die by SIGKILL."""

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
