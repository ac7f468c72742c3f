"""The HTTP face's listener: uvicorn on a thread of the serve process, its own asyncio loop.

A thread, not a process: the face shares the Flight server's store, slots and
live hub. uvicorn installs no signal handlers off the main thread, so the serve
process keeps its own SIGINT/SIGTERM handling and stops the face on the way out.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading

import uvicorn

from ..server import FlightdeckServer
from ..settings import Settings
from .app import create_app

__all__ = ["HttpFace", "HttpStartError"]

log = logging.getLogger("flightdeck.http")

_START_S = 10.0
_GRACE_S = 5.0  # open responses (live streams end first: the hub is closed before)


def _tls(settings: Settings) -> dict:
    """Flight's certificate, and with --tls-client-ca the same demand for client certificates:
    the face must not be the unguarded door beside a mutual-TLS Flight port."""
    if not settings.tls_cert:
        return {}
    options = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
    if settings.tls_client_ca:
        options |= {"ssl_ca_certs": str(settings.tls_client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options


class HttpStartError(RuntimeError):
    """The face could not listen (port taken, address not available)."""


class HttpFace:
    def __init__(self, server: FlightdeckServer, host: str, port: int) -> None:
        settings = server.settings
        tls = _tls(settings)
        config = uvicorn.Config(
            create_app(server),
            host=host,
            port=port,
            log_config=None,  # our logging setup, not uvicorn's
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(_GRACE_S),
            **tls,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="http-face", daemon=True)
        self._failed: BaseException | None = None
        self._socket: socket.socket | None = None
        self.port = port

    def start(self) -> HttpFace:
        """Listening when it returns; HttpStartError (saying why) otherwise."""
        config = self._server.config
        try:
            # Bound here, not by uvicorn, so a taken port fails the start in one line.
            self._socket = socket.create_server((config.host, config.port))
        except OSError as exc:
            raise HttpStartError(
                f"the HTTP face cannot listen on {config.host}:{config.port}: {exc.strerror} "
                "(--http-port; 0 turns it off)"
            ) from None
        self.port = self._socket.getsockname()[1]
        self._thread.start()
        while not self._server.started:
            self._thread.join(0.05)
            if not self._thread.is_alive():
                raise HttpStartError(f"the HTTP face failed to start: {self._failed!r}")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(_GRACE_S + 5)
        if self._thread.is_alive():
            log.warning("the HTTP face did not stop within %.0f s", _GRACE_S + 5)

    @property
    def url(self) -> str:
        scheme = "https" if self._server.config.ssl_certfile else "http"
        return f"{scheme}://{self._server.config.host}:{self.port}"

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # uvicorn exits (SystemExit) on a failed start
            self._failed = exc
