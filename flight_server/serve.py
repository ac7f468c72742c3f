"""Run the server: open the store, migrate, serve until Ctrl-C or SIGTERM, clean up."""

from __future__ import annotations

import logging
import signal
import sys

from flightdeck.views import migrations, open_store, view_names

from .server import FlightdeckServer
from .settings import Settings

__all__ = ["configure_logging", "run"]

log = logging.getLogger("flightdeck.serve")


def configure_logging(level: str) -> None:
    """key=value lines on stderr: readable by people, parseable by log shippers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(settings: Settings) -> None:
    """Serve until interrupted; migrations are applied first, every time (they are idempotent)."""
    store = open_store(settings.store_options())
    try:
        found = migrations.load_migrations(store.backend, settings.views_dir)
        for m in migrations.apply(store, found):
            log.info("migration applied phase=%s name=%s", m.phase, m.name)
        server = FlightdeckServer(settings, store)
        log.info(
            "serving location=grpc://%s:%d backend=%s views=%s",
            settings.host,
            server.port,
            store.backend,
            ",".join(view_names(store)),
        )
        # Both stop the server cleanly, even when a parent shell started us with
        # SIGINT ignored (as it does for background jobs); SIGTERM is systemd's/k8s' stop.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.serve()  # pyarrow returns here on SIGINT/SIGTERM, then re-raises it
        except KeyboardInterrupt:
            pass
        finally:
            log.info("shutting down")
            server.shutdown()
    finally:
        store.close()
