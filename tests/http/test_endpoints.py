"""Health, auth and the views listing of the HTTP face."""

from __future__ import annotations

import base64

import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.auth import add_token, add_user
from flightdeck.views import describe

from tests.http.conftest import face_on

# A server per test: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow


def test_healthz_answers_while_alive(http):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_readyz_is_ready_when_the_store_answers(http):
    response = http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["not_ready"] == []


def test_readyz_names_nats_when_it_is_disconnected(store, tmp_path):
    server = FlightdeckServer(
        Settings(port=0, data_dir=tmp_path), store, nats_status=lambda: "disconnected"
    )
    try:
        with face_on(server) as http:
            response = http.get("/readyz")
    finally:
        server.shutdown()
    assert response.status_code == 503
    assert response.json()["not_ready"] == ["nats"]
    assert response.json()["nats"] == "disconnected"


def test_views_lists_every_view_with_its_columns(http, store):
    listing = http.get("/api/views").json()["views"]
    expected = {view.name: view.schema for view in describe(store)}
    assert [view["name"] for view in listing] == list(expected)
    aggregate = next(v for v in listing if v["name"] == "va_pageview_aggregate")
    columns = {c["name"]: c["type"] for c in aggregate["columns"]}
    schema = expected["va_pageview_aggregate"]
    assert columns == {f.name: str(f.type) for f in schema}
    assert {"page_url", "view_count", "bounce_rate"} <= set(columns)


@pytest.fixture
def secured(store, tmp_path):
    path = tmp_path / "auth.toml"
    add_user(path, "rita", "reader", "rita-pw")
    token = add_token(path, "reader-bot", "reader")
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path, auth_file=path), store)
    with face_on(server) as http:
        yield http, token
    server.shutdown()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


QUERY = {"sql": "SELECT 1 AS one"}


def test_every_api_refuses_a_caller_without_a_token(secured):
    http, _ = secured
    for method, path in [("GET", "/api/views"), ("POST", "/api/query"), ("GET", "/api/live/x")]:
        response = http.request(method, path, json=QUERY if method == "POST" else None)
        assert response.status_code == 401, (path, response.text)
        assert "authentication required" in response.json()["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = http.get("/api/views", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert "unknown or revoked" in bad.json()["error"]
    assert http.get("/healthz").status_code == 200  # load balancers carry no token


def test_how_to_sign_in_is_public(secured, store, tmp_path):
    http, _ = secured
    assert http.get("/api/auth").json() == {"required": True, "oidc": None}
    sso = Settings(
        port=0,
        data_dir=tmp_path,
        oidc_issuer="https://login.example.com/realms/acme",
        oidc_audience="flightdeck",
        oidc_client_id="flightdeck-dashboard",
    )
    server = FlightdeckServer(sso, store)
    try:
        with face_on(server) as sso_http:
            assert sso_http.get("/api/auth").json() == {
                "required": True,
                "oidc": {
                    "issuer": "https://login.example.com/realms/acme",
                    "client_id": "flightdeck-dashboard",
                    "scope": "openid",
                },
            }
    finally:
        server.shutdown()


def test_a_client_id_without_an_issuer_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="--oidc-client-id needs --oidc-issuer"):
        Settings(port=0, data_dir=tmp_path, oidc_client_id="dashboard").oidc_options()


def test_a_bearer_token_is_accepted(secured):
    http, token = secured
    response = http.post("/api/query", json=QUERY, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json() == [{"one": 1}]


def test_basic_auth_earns_a_session_token(secured):
    http, _ = secured
    assert http.get("/api/views", headers=_basic("rita", "wrong")).status_code == 401
    login = http.get("/api/views", headers=_basic("rita", "rita-pw"))
    assert login.status_code == 200, login.text
    scheme, _, session = login.headers["Authorization"].partition(" ")
    assert scheme == "Bearer" and session
    again = http.post("/api/query", json=QUERY, headers={"Authorization": f"Bearer {session}"})
    assert again.status_code == 200, again.text
    assert "Authorization" not in again.headers  # a bearer call earns nothing new
