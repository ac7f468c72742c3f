"""Run the server: open the store, migrate, start NATS work, serve until Ctrl-C or SIGTERM.

Everything started is stopped in reverse order on the way out: the Flight
server, the background loop (worker, publisher), the embedded nats-server, the store.
The embedded nats-server admits only the logins generated under the data
folder, and is started again if it dies.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path

from flightdeck.ingest import fill_derived
from flightdeck.ingest.rollup_install import install
from flightdeck.views import Store, migrations, open_store, view_names
from flightdeck.views.rollup_spec import load_rollups

from .background import Background
from .http.face import HttpFace
from .metrics import Metrics
from .nats_address import URL_FILE, saved_port, write_url
from .nats_auth import CREDENTIALS_FILE, NatsAuth, NatsLogin
from .nats_process import NatsProcess, NatsStartError
from .nats_supervisor import NatsSupervisor
from .server import FlightdeckServer, authenticator_for
from .settings import Settings

__all__ = ["configure_logging", "run", "run_worker"]

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


def run(settings: Settings) -> None:
    """Serve until interrupted; migrations are applied first, every time (they are idempotent)."""
    with contextlib.ExitStack() as stack:
        store = _migrated_store(settings, stack)
        install_rollups(settings, store)
        nats_url, login = _nats(settings, stack)
        metrics = _metrics(settings, stack)
        background = _background(settings, store, nats_url, stack, metrics, login)
        server = FlightdeckServer(
            settings,
            store,
            committed=background.committed,
            hub=background.hub,
            metrics=metrics,
            nats_status=background.nats_status,
            ingest_status=background.ingest_status,
        )
        _http_face(settings, server, stack)
        scheme = settings.location.split("://")[0]
        log.info(
            "serving location=%s://%s:%d backend=%s nats=%s views=%s",
            scheme,
            settings.host,
            server.port,
            store.backend,
            nats_url,
            ",".join(view_names(store)),
        )
        _log_exposure(settings)
        _serve_until_stopped(server)


def _http_face(
    settings: Settings, server: FlightdeckServer, stack: contextlib.ExitStack
) -> HttpFace | None:
    """With --http-port (the default 8816; 0: off), the HTTP face beside Flight.
    Stopped with the stack, so after Flight's shutdown has ended the live streams."""
    if not settings.http_port:
        return None
    face = HttpFace(server, settings.host, settings.http_port).start()
    stack.callback(face.stop)
    log.info("http location=%s", face.url)
    return face


def _log_exposure(settings: Settings) -> None:
    if settings.authenticated:
        log.info(
            "authentication on auth_file=%s oidc_issuer=%s tls=%s",
            settings.auth_file,
            settings.oidc_issuer,
            bool(settings.tls_cert),
        )
    elif settings.loopback:
        log.warning(
            "no authentication configured: serving on loopback only; "
            "pass --auth-file to serve other machines"
        )
    else:
        log.warning("serving %s WITHOUT authentication (--insecure)", settings.host)


def run_worker(settings: Settings) -> None:
    """`flightdeck ingest`: the NATS worker (and publisher, retention) without a Flight server."""
    with contextlib.ExitStack() as stack:
        store = _migrated_store(settings, stack)
        nats_url, login = _nats(settings, stack)
        _background(settings, store, nats_url, stack, _metrics(settings, stack), login)
        log.info("ingesting nats=%s backend=%s", settings.nats, store.backend)
        _wait_until_stopped()


def _migrated_store(settings: Settings, stack: contextlib.ExitStack) -> Store:
    """The store, closed with the stack, with pending migrations applied (they are idempotent)."""
    store = open_store(settings.store_options())
    stack.callback(store.close)
    found = migrations.load_migrations(store.backend, settings.views_dir)
    for m in migrations.apply(store, found):
        log.info("migration applied phase=%s name=%s", m.phase, m.name)
    if filled := fill_derived(store):
        log.info("derived dimensions filled for events stored before them rows=%d", filled)
    # On PostgreSQL queries log in as the reader role, set up on the first read:
    # read once now, so a missing or too powerful role stops the start, saying why.
    with store.read("SELECT 1 AS ok") as reader:
        reader.read_all()
    return store


def install_rollups(settings: Settings, store: Store) -> None:
    """Keep the declared rollups (docs/rollups.md); a new one is backfilled now."""
    done = install(store, load_rollups(settings.rollup_folders()))
    for name in done.backfilled:
        log.info("rollup installed and backfilled name=%s view=va_%s", name, name)
    for name in done.dropped:
        log.info("rollup dropped (no longer declared) name=%s", name)
    if done.backfilled and done.expired_days:
        log.warning(
            "rollups backfilled without the %d day(s) whose raw events retention deleted: "
            "the buckets (hours, days, weeks, months) holding them have no rows",
            done.expired_days,
        )


def _nats(settings: Settings, stack: contextlib.ExitStack) -> tuple[str, NatsLogin | None]:
    """The external NATS if given (its own auth), else an embedded nats-server,
    watched and stopped with the stack, and flightdeck's login on it."""
    if settings.nats:
        return settings.nats, None
    folder = settings.data_dir / "nats"
    auth = NatsAuth.ensure(folder)
    embedded = _embedded_nats(folder, auth)
    stack.callback(embedded.stop)
    write_url(folder, embedded.url)
    log.info(
        "embedded nats requires a login: writers publish to events.<type> as user=%s; "
        "`flightdeck nats-credentials --data-dir %s` prints it (file %s, mode 0600)",
        auth.writer.user,
        settings.data_dir,
        folder / CREDENTIALS_FILE,
    )
    return embedded.url, auth.internal


def _embedded_nats(folder: Path, auth: NatsAuth) -> NatsSupervisor:
    """Started on the port of the last start (producers keep their address), else
    on a free one, saying so: the new address is in `folder`/url for them."""
    saved = saved_port(folder)
    if saved is not None:
        try:
            return NatsSupervisor(NatsProcess(folder, port=saved, auth=auth)).start()
        except NatsStartError as exc:
            log.debug("embedded nats could not reuse port %d: %s", saved, exc)
    embedded = NatsSupervisor(NatsProcess(folder, auth=auth)).start()
    if saved is not None:
        log.warning(
            "embedded nats could not listen on its last port %d again (in use?): now on %s; "
            "producers must read the address again from %s",
            saved,
            embedded.url,
            folder / URL_FILE,
        )
    return embedded


def _metrics(settings: Settings, stack: contextlib.ExitStack) -> Metrics | None:
    """With --metrics-port: the metrics, served over HTTP until the stack closes."""
    if settings.metrics_port is None:
        return None
    metrics = Metrics()
    # With auth on, a scrape authenticates like a Flight call, by its own reader of the file.
    guard = authenticator_for(settings)
    endpoint = metrics.serve(settings.metrics_host, settings.metrics_port, guard)
    if settings.metrics_host != settings.host:
        log.warning(
            "metrics on loopback, not %s: without --auth-file they are public only with --insecure",
            settings.host,
        )
    stack.callback(endpoint.close)
    log.info("metrics location=%s", endpoint.url)
    return metrics


def _background(
    settings: Settings,
    store: Store,
    nats_url: str,
    stack: contextlib.ExitStack,
    metrics: Metrics | None = None,
    login: NatsLogin | None = None,
) -> Background:
    background = Background(
        settings, store, nats_url, worker=True, metrics=metrics, login=login
    ).start()
    stack.callback(background.stop)
    if not background.wait_ready(10.0):
        # Queries do not need NATS; ingest and live updates start once it answers.
        log.warning("nats not reachable yet url=%s; still trying in the background", nats_url)
    return background


def _serve_until_stopped(server: FlightdeckServer) -> None:
    # The server already serves on gRPC's threads; we wait for a signal ourselves
    # rather than in pyarrow's serve(), which would shut gRPC down first and wait
    # forever for live subscriptions that only our shutdown() knows how to end.
    _wait_until_stopped()
    server.shutdown()


def _wait_until_stopped() -> None:
    stop = _stop_on_signals()
    while not stop.wait(0.5):
        pass
    log.info("shutting down")


def _stop_on_signals() -> threading.Event:
    """Stop on SIGINT and SIGTERM, even when a parent shell started us with SIGINT
    ignored (as it does for background jobs); SIGTERM is systemd's and Kubernetes' stop.

    The handler only records the request: raising from it (KeyboardInterrupt)
    could land anywhere, the shutdown path included, and cut it short.
    """
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop
