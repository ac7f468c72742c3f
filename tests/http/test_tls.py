"""With Flight's certificate the face speaks HTTPS, and with a client CA it demands
client certificates too: never a plain door beside a TLS Flight port."""

from __future__ import annotations

import ssl

import httpx
import pytest
import trustme
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.http import HttpFace

# TLS servers: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

_REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("flightdeck-client")
    blobs = {
        "ca": ca.cert_pem,
        "cert": server.cert_chain_pems[0],
        "key": server.private_key_pem,
        "client_cert": client.cert_chain_pems[0],
        "client_key": client.private_key_pem,
    }
    paths = {}
    for name, blob in blobs.items():
        paths[name] = folder / f"{name}.pem"
        blob.write_to_path(str(paths[name]))
    return paths


def _face(store, tmp_path, certificates, **more) -> tuple[FlightdeckServer, HttpFace]:
    settings = Settings(
        port=0,
        data_dir=tmp_path,
        tls_cert=certificates["cert"],
        tls_key=certificates["key"],
        **more,
    )
    server = FlightdeckServer(settings, store)
    return server, HttpFace(server, "127.0.0.1", 0).start()


def _context(certificates, with_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificates["ca"]))
    if with_client_cert:
        context.load_cert_chain(certificates["client_cert"], certificates["client_key"])
    return context


def test_tls_serves_https(store, tmp_path, certificates):
    server, face = _face(store, tmp_path, certificates)
    try:
        assert face.url.startswith("https://")
        trusted = httpx.get(f"{face.url}/healthz", verify=_context(certificates, False))
        assert trusted.status_code == 200
        with pytest.raises(_REFUSED):  # plain HTTP gets no answer
            httpx.get(f"{face.url.replace('https', 'http')}/healthz", timeout=5)
        with pytest.raises(_REFUSED):  # nor does a client that does not trust the certificate
            httpx.get(f"{face.url}/healthz", timeout=5)
    finally:
        face.stop()
        server.shutdown()


def test_mutual_tls_requires_a_client_certificate(store, tmp_path, certificates):
    server, face = _face(store, tmp_path, certificates, tls_client_ca=certificates["ca"])
    try:
        with_cert = httpx.get(f"{face.url}/healthz", verify=_context(certificates, True))
        assert with_cert.status_code == 200
        with pytest.raises(_REFUSED):
            httpx.get(f"{face.url}/healthz", verify=_context(certificates, False), timeout=5)
    finally:
        face.stop()
        server.shutdown()
