"""A JetStream cluster of real nats-servers on loopback, whose nodes can be SIGKILLed.

Each node has its own store, client port and route port, and routes to the
others; its name is fixed, so a node started again on its store rejoins as the
same peer (JetStream knows peers by name).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import nats
from flightdeck.flight_server.nats_process import nats_binary

from tests.services import free_port, wait_for


class Node:
    def __init__(self, name: str, store_dir: Path, cluster: str) -> None:
        self.name = name
        self.store_dir = store_dir
        self.cluster = cluster
        self.port = free_port()
        self.route_port = free_port()
        self.routes: list[str] = []
        self.log_path = store_dir.with_suffix(".log")
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def route(self) -> str:
        return f"nats://127.0.0.1:{self.route_port}"

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(nats_binary()), "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1"]
        cmd += ["-p", str(self.port), "-n", self.name, "--cluster_name", self.cluster]
        cmd += ["--cluster", self.route, "--routes", ",".join(self.routes)]
        with self.log_path.open("a") as log:  # a file: no pipe for a long test to fill
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=log)

    def kill(self) -> None:
        """SIGKILL, as a power cut would: no goodbye to the cluster."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Cluster:
    def __init__(self, root: Path, size: int = 3) -> None:
        self.nodes = [Node(f"n{i}", root / f"n{i}", "flightdeck") for i in range(size)]
        for node in self.nodes:
            node.routes = [other.route for other in self.nodes if other is not node]

    @property
    def urls(self) -> str:
        """Every node's address, comma-separated, as `--nats` takes a cluster."""
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 60.0) -> Cluster:
        for node in self.nodes:
            node.start()
        assert wait_for(self.has_meta_leader, timeout, interval=0.5), self.logs()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def has_meta_leader(self) -> bool:
        """JetStream answers account requests only once the cluster has elected a meta leader."""
        return _run(self._account_info()) is not None

    def stream_leader(self, stream: str) -> str | None:
        info = _run(self._stream_info(stream))
        return info.cluster.leader if info is not None and info.cluster is not None else None

    def stream_info(self, stream: str):
        return _run(self._stream_info(stream))

    def add_stream(self, config) -> None:
        """Create a stream as an operator (or an older flightdeck) would have."""
        assert _run(self._add_stream(config)) is not None, self.logs()

    async def _add_stream(self, config):
        nc = await nats.connect(self.urls.split(","), connect_timeout=2, error_cb=_quiet)
        try:
            return await nc.jetstream(timeout=10).add_stream(config)
        finally:
            await nc.close()

    async def _account_info(self):
        nc = await nats.connect(
            self.urls.split(","), connect_timeout=2, max_reconnect_attempts=1, error_cb=_quiet
        )
        try:
            return await nc.jetstream(timeout=2).account_info()
        finally:
            await nc.close()

    async def _stream_info(self, stream: str):
        nc = await nats.connect(
            self.urls.split(","), connect_timeout=2, max_reconnect_attempts=1, error_cb=_quiet
        )
        try:
            return await nc.jetstream(timeout=2).stream_info(stream)
        finally:
            await nc.close()

    def logs(self, last: int = 20) -> str:
        out = []
        for node in self.nodes:
            lines = node.log_path.read_text().splitlines() if node.log_path.exists() else []
            out += [f"--- {node.name}", *lines[-last:]]
        return "\n".join(out)


async def _quiet(exc: Exception) -> None:
    """A node that is down is expected here; the call's own result says what matters."""


def _run(coroutine):
    """The coroutine's result, or None if NATS did not answer (an election under way)."""
    try:
        return asyncio.run(coroutine)
    except (nats.errors.Error, OSError, TimeoutError):
        return None
