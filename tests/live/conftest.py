"""Fixtures of the live client tests: a restartable server and a Client of it."""

from tests.live.restartable import live_client, live_server

__all__ = ["live_client", "live_server"]
