"""The HTTP face on an in-process server, as `serve` runs it: same store, slots and hub."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest
from flightdeck.flight_server import FlightdeckServer
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
