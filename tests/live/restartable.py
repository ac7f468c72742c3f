"""A server's parts in this process that a test can restart on the same port."""

from __future__ import annotations

import pytest
from flightdeck import Client
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.background import Background


class RestartableServer:
    """A server's parts in this process, that can be stopped and started on one port."""

    def __init__(self, store, nats_url: str, tmp_path) -> None:
        self._store, self._nats_url, self._tmp_path = store, nats_url, tmp_path
        self.port = 0
        self._start()

    @property
    def location(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def _start(self) -> None:
        settings = Settings(
            port=self.port, data_dir=self._tmp_path, raw_retention_days=0, heartbeat=0.5
        )
        self._background = Background(settings, self._store, self._nats_url, worker=True).start()
        assert self._background.wait_ready(10)
        self._server = FlightdeckServer(
            settings, self._store, committed=self._background.committed, hub=self._background.hub
        )
        self.port = self._server.port

    @property
    def hub(self):
        return self._background.hub

    def stop(self) -> None:
        self._server.shutdown()
        self._background.stop()

    def restart(self) -> None:
        self.stop()
        self._start()


@pytest.fixture
def live_server(store, nats_server, tmp_path):
    running = RestartableServer(store, nats_server.url, tmp_path)
    yield running
    running.stop()


@pytest.fixture
def live_client(live_server):
    with Client(live_server.location) as connected:
        yield connected
