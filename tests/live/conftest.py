"""Fixtures of the live tests: a server's parts in this process (`location`, and a Flight
client of it, `live`), and a restartable server with a Client of it."""

import pyarrow.flight as flight
import pytest

from tests.flight_server.test_live import _server
from tests.live.restartable import live_client, live_server

__all__ = ["live", "live_client", "live_server", "location"]


@pytest.fixture
def location(store, nats_server, tmp_path):
    with _server(store, nats_server.url, tmp_path) as where:
        yield where


@pytest.fixture
def live(location):
    client = flight.connect(location)
    yield client
    client.close()
