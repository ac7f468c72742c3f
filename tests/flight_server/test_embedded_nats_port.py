"""The embedded nats-server keeps its address across restarts of `flightdeck serve`.

Producers read it from DATA_DIR/nats/url (or `flightdeck nats-credentials`)
instead of serve's log; a real `flightdeck serve` started again on one data
dir comes back on the same port, and on a new one (written to the file, and
logged) when another process holds the old one.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.faults.processes import Flightdeck


def _serve(tmp_path) -> Flightdeck:
    serve = Flightdeck(["serve", "--port", "0", "--data-dir", "data"], tmp_path)
    serve.start()
    return serve


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _printed_url(serve: Flightdeck) -> str:
    pairs = serve.nats_credentials()
    return pairs["NATS_URL"]


@contextlib.contextmanager
def _squat(port: int) -> Iterator[None]:
    """Listen on `port`, as another program would. The stopped nats-server's last
    connections may keep it in TIME_WAIT (which a listener with SO_REUSEADDR may
    share, as nats-server's does), or its process may still be closing."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 20
        while True:
            try:
                squatter.bind(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        squatter.listen()
        yield


@pytest.mark.slow  # three `flightdeck serve` starts
def test_a_restart_keeps_the_port_and_a_taken_port_is_replaced_in_the_file(tmp_path):
    serve = _serve(tmp_path)
    try:
        first = serve.ready_nats_url
        url_file = serve.data_dir / "nats" / "url"
        assert url_file.read_text().strip() == first
        assert _printed_url(serve) == first
    finally:
        serve.stop()

    serve.start()
    try:
        assert serve.ready_nats_url == first  # producers need not look again
    finally:
        serve.stop()

    with _squat(_port(first)):
        serve.start()
        try:
            moved = serve.ready_nats_url
            assert _port(moved) != _port(first)
            assert url_file.read_text().strip() == moved
            assert _printed_url(serve) == moved
            assert f"port {_port(first)}" in serve.log(200), serve.log(200)  # and says so
        finally:
            serve.stop()
