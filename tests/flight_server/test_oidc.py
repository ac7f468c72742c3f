"""Single sign-on: an identity provider's JWTs on Flight and HTTP, against keys and a JWKS
endpoint this test serves on loopback (RS256 and ES256 keys made here)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import httpx
import jwt
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.auth import Authenticator
from flightdeck.flight_server.auth.oidc import OidcOptions
from flightdeck.flight_server.http import HttpFace

from tests.oidc_provider import AUDIENCE, Provider, new_provider, serving

pytestmark = pytest.mark.slow  # servers and long queries per test: make test runs them

SQL = b"SELECT 1 AS one"
EVENTS = flight.FlightDescriptor.for_path("events", "pageview")


@pytest.fixture
def idp() -> Iterator[Provider]:
    with serving(new_provider()) as provider:
        yield provider


@pytest.fixture
def sso(store, tmp_path, idp) -> Iterator[tuple[flight.FlightClient, httpx.Client]]:
    settings = Settings(port=0, data_dir=tmp_path, oidc_issuer=idp.url, oidc_audience=AUDIENCE)
    server = FlightdeckServer(settings, store)
    face = HttpFace(server, "127.0.0.1", 0).start()
    try:
        with (
            flight.connect(f"grpc://127.0.0.1:{server.port}") as client,
            httpx.Client(base_url=face.url, timeout=30) as http,
        ):
            yield client, http
    finally:
        face.stop()
        server.shutdown()


def _as(token: str) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])


def _flight_query(client: flight.FlightClient, token: str) -> pa.Table:
    options = _as(token)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(SQL), options)
    return client.do_get(info.endpoints[0].ticket, options).read_all()


def _http_query(http: httpx.Client, token: str) -> httpx.Response:
    return http.post(
        "/api/query", json={"sql": SQL.decode()}, headers={"Authorization": f"Bearer {token}"}
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forged(idp: Provider, header: dict, key: bytes) -> str:
    """A token with `header` and good claims, HMAC-"signed" with `key` (empty: unsigned)."""
    claims = {"iss": idp.url, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 600}
    signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(key, signed.encode(), hashlib.sha256).digest() if key else b""
    return f"{signed}.{_b64(mac)}"


def test_provider_tokens_query_on_flight_and_http(sso, idp):
    client, http = sso
    for token in (idp.token(), idp.token("ec", "ES256")):
        assert _flight_query(client, token).to_pylist() == [{"one": 1}]
        response = _http_query(http, token)
        assert response.status_code == 200, response.text
        assert response.json() == [{"one": 1}]


def _refusals(idp: Provider) -> dict[str, tuple[str, str]]:
    """Each bad token and the reason its refusal must give."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        idp.private["rsa"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return {
        "expired": (idp.token(exp=int(time.time()) - 300), "token expired"),
        "audience": (idp.token(aud="another-app"), "audience is not 'flightdeck'"),
        "issuer": (idp.token(iss="https://evil.example"), "was not issued by"),
        "signature": (idp.token(key=other), "signature does not verify"),
        "kid": (idp.token(kid="nobody", key=other), "unknown key id 'nobody'"),
        "none": (_forged(idp, {"alg": "none", "kid": "rsa"}, b""), "algorithm 'none'"),
        "hs256": (
            _forged(idp, {"alg": "HS256", "kid": "rsa", "typ": "JWT"}, public_pem),
            "algorithm 'HS256'",
        ),
        "role": (idp.token(roles=["viewer"]), "grants no flightdeck role"),
        "garbage": ("eyJub3Q.a.jwt", "malformed token header"),
    }


def test_bad_tokens_are_refused_saying_why_on_flight_and_http(sso, idp):
    client, http = sso
    for case, (token, reason) in _refusals(idp).items():
        with pytest.raises(flight.FlightUnauthenticatedError) as refused:
            _flight_query(client, token)
        assert reason in str(refused.value), case
        assert token not in str(refused.value), case
        response = _http_query(http, token)
        assert response.status_code == 401, case
        assert reason in response.text, case
        assert token not in response.text, case


def test_the_role_claim_sets_the_role(sso, idp):
    client, _ = sso
    table = pa.table(
        {
            "event_id": ["sso-1"],
            "session_id": ["s"],
            "page_url": ["/a"],
            "recorded_at": ["2024-01-15T10:00:00Z"],
        }
    )

    def put(token: str) -> None:
        writer, meta = client.do_put(EVENTS, table.schema, _as(token))
        writer.write_table(table)
        writer.done_writing()
        meta.read()
        writer.close()

    with pytest.raises(flight.FlightUnauthorizedError, match="needs the writer role"):
        put(idp.token())
    put(idp.token(roles=["reader", "writer"]))  # the highest counts
    # A space-separated string is read as well as a list.
    put(idp.token(roles="admin"))


def test_unknown_key_ids_fetch_the_key_set_at_most_once_per_interval(idp):
    options = OidcOptions(idp.url, AUDIENCE, "realm_access.roles", refresh_s=1.0)
    auth = Authenticator(None, oidc=options)
    token = idp.token(realm_access={"roles": ["writer"]})
    identity, _ = auth.authenticate(f"Bearer {token}")
    assert (identity.name, identity.role) == ("sso-user", "writer")
    assert idp.fetches == 1
    for i in range(50):
        with pytest.raises(flight.FlightUnauthenticatedError, match="unknown key id"):
            auth.authenticate(f"Bearer {idp.token(kid=f'made-up-{i}', key=idp.private['rsa'])}")
    assert idp.fetches <= 2  # a burst of made-up key ids cost at most one more fetch
    # The provider rotates in a new key: it is fetched once the interval has passed.
    idp.add_key("rotated", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
    rotated = f"Bearer {idp.token('rotated', realm_access={'roles': ['reader']})}"
    deadline = time.monotonic() + 30
    while True:
        try:
            assert auth.authenticate(rotated)[0].role == "reader"
            break
        except flight.FlightUnauthenticatedError:
            assert time.monotonic() < deadline, "the rotated key was never fetched"
            time.sleep(0.1)


def test_an_unreachable_provider_is_unavailable_not_a_refusal(tmp_path):
    # A port nothing listens on: the server says it cannot check, not that the token is bad.
    options = OidcOptions("http://127.0.0.1:9", AUDIENCE, timeout_s=2)
    auth = Authenticator(None, oidc=options)
    token = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "a"})
    token = token.replace(token.split(".")[0], _b64(b'{"alg":"RS256","kid":"a"}'))
    with pytest.raises(flight.FlightUnavailableError, match="single sign-on unavailable"):
        auth.authenticate(f"Bearer {token}")


def test_an_issuer_must_be_https_off_loopback():
    with pytest.raises(ValueError, match="use https://"):
        OidcOptions("http://idp.example.com", AUDIENCE)
    with pytest.raises(ValueError, match="needs --oidc-audience"):
        OidcOptions("https://idp.example.com", "")
