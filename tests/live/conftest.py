"""Fixtures of the live tests: a server's parts in this process (`location`, and a Flight
client of it, `live`, as tests/flight_server/test_live.py defines them), and a
restartable server with a Client of it."""

from tests.flight_server.test_live import live, location
from tests.live.restartable import live_client, live_server

__all__ = ["live", "live_client", "live_server", "location"]
