"""`GET /` and its assets: served from the package, public like a login page, while
the data calls it makes need a token when auth is on."""

from __future__ import annotations

import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.auth import add_token

from tests.http.conftest import face_on

# A server per test: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

ASSETS = {
    "/static/app.js": "javascript",
    "/static/live.js": "javascript",
    "/static/sso.js": "javascript",
    "/static/chart.js": "javascript",
    "/static/format.js": "javascript",
    "/static/style.css": "text/css",
}


def test_the_page_and_its_assets_are_served(http):
    page = http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in page.text
    for path, kind in ASSETS.items():
        response = http.get(path)
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"], (path, response.headers)
    assert http.get("/static/missing.js").status_code == 404
    assert http.get("/static/../app.py").status_code == 404  # nothing outside static/


def test_with_auth_the_page_is_public_and_its_data_is_not(store, tmp_path):
    path = tmp_path / "auth.toml"
    token = add_token(path, "wall-screen", "reader")
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path, auth_file=path), store)
    try:
        with face_on(server) as http:
            assert http.get("/").status_code == 200
            assert http.get("/static/app.js").status_code == 200
            assert http.get("/api/live/va_site_daily?columns=views").status_code == 401
            bearer = {"Authorization": f"Bearer {token}"}
            assert http.get("/api/views", headers=bearer).status_code == 200
    finally:
        server.shutdown()
