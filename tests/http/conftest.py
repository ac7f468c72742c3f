"""The HTTP face on an in-process server, as `serve` runs it: same store, slots and hub."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.background import Background
from flightdeck.flight_server.http import HttpFace


@contextlib.contextmanager
def face_on(server: FlightdeckServer) -> Iterator[httpx.Client]:
    """An HTTP client on a face started for `server` on a free port."""
    face = HttpFace(server, "127.0.0.1", 0).start()
    try:
        with httpx.Client(base_url=face.url, timeout=30) as http:
            yield http
    finally:
        face.stop()


@pytest.fixture
def http(server: FlightdeckServer) -> Iterator[httpx.Client]:
    with face_on(server) as client:
        yield client


@contextlib.contextmanager
def live_face(store, nats_url: str, tmp_path) -> Iterator[tuple]:
    """An HTTP client and a Flight client on one server with its hub, worker and
    publisher, and the server."""
    settings = Settings(port=0, data_dir=tmp_path, raw_retention_days=0, heartbeat=0.5)
    background = Background(settings, store, nats_url, worker=True).start()
    assert background.wait_ready(10)
    server = FlightdeckServer(settings, store, committed=background.committed, hub=background.hub)
    try:
        with face_on(server) as http, flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            yield http, client, server
    finally:
        server.shutdown()
        background.stop()
