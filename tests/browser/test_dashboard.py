"""The dashboard (`GET /`) in a real browser: Debian's Chromium, headless, driven by
Playwright, against a real `serve` process.

Load the page, put events, and the numbers become what a fresh query says; kill the
server (SIGKILL), restart it on the same ports and data, put more, and the page
resumes by itself. The page's clock is pinned (`?now=`) and the data fixed, so
the screenshot it leaves in docs/dashboard.png is the same from run to run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import re
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server.auth import add_user
from playwright.sync_api import Browser, Page, sync_playwright

from tests.doput import put_events
from tests.oidc_provider import AUDIENCE, DASHBOARD_CLIENT, new_provider, serving

pytestmark = pytest.mark.slow  # kills a server; starts a browser

CLI = [sys.executable, "-m", "flightdeck.cli"]
SCREENSHOT = Path(__file__).parents[2] / "docs" / "dashboard.png"
CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium stalls on a closed network, reaching for Google.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
NOW = dt.datetime(2024, 3, 5, 14, 40, tzinfo=dt.UTC)  # the page's pinned clock
TODAY = NOW.date().isoformat()
THIS_HOUR = NOW.replace(minute=0).isoformat()
PAGES = ["/", "/pricing", "/docs/getting-started", "/blog/live-dashboards", "/docs/flight-sql",
         "/about", "/careers", "/docs/ingest", "/blog/exact-rollups", "/changelog", "/contact",
         "/docs/auth"]  # fmt: skip
REFERRERS = [None, "https://www.google.com/search", "https://news.ycombinator.com/item",
             "https://github.com/flightdeck", "https://duckduckgo.com/", "https://lobste.rs/s/x",
             "https://www.bing.com/search"]  # fmt: skip
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("session_id", pa.string()),
        ("page_url", pa.string()),
        ("recorded_at", pa.timestamp("us", "UTC")),
        ("user_id", pa.string()),
        ("referrer", pa.string()),
        ("user_agent", pa.string()),
        ("duration_s", pa.float64()),
    ]
)


def _events(seed: int, n: int, hours: int) -> pa.Table:
    """About `n` page views in visits of 1-4 pages, in the `hours` up to NOW, popular
    pages and sources first; fixed by `seed`."""
    rand = random.Random(seed)
    rows: list[dict] = []
    while len(rows) < n:
        session = f"s-{seed}-{len(rows)}"
        user = f"u{rand.randrange(500)}"
        at = NOW - dt.timedelta(seconds=rand.randrange(hours * 3600 - 900) + 900)
        referrer = REFERRERS[min(int(rand.expovariate(0.5)), len(REFERRERS) - 1)]
        for _ in range(rand.choice((1, 1, 2, 3, 4))):
            rows.append(
                {
                    "event_id": f"dash-{seed}-{len(rows)}",
                    "session_id": session,
                    "page_url": "https://example.com" + PAGES[min(int(rand.expovariate(0.35)), 11)],
                    "recorded_at": at,
                    "user_id": user,
                    "referrer": referrer,
                    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36",
                    "duration_s": float(rand.randrange(5, 240)),
                }
            )
            at += dt.timedelta(seconds=rand.randrange(20, 180))
            referrer = "https://example.com/"  # the next pages: internal navigation
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(tmp_path: Path, port: int, http_port: int, *flags: str) -> Iterator[subprocess.Popen]:
    # The data are of a fixed past day (NOW): retention must not delete them on restart.
    args = [*CLI, "serve", "--port", str(port), "--http-port", str(http_port),
            "--data-dir", "data", "--raw-retention-days", "0", *flags]  # fmt: skip
    proc = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if "serving location=" in line:
                break
        assert proc.poll() is None, "serve did not start"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _query(http_url: str, sql: str) -> list[dict]:
    response = httpx.post(f"{http_url}/api/query", json={"sql": sql}, timeout=30)
    response.raise_for_status()
    return response.json()


def _expected(http_url: str) -> dict:
    """What a fresh query says the page must show."""
    day = _query(
        http_url,
        "SELECT COALESCE(SUM(visitors), 0) AS visitors, COALESCE(SUM(views), 0) AS views, "
        f"COALESCE(SUM(visits), 0) AS visits FROM va_site_daily WHERE date = DATE '{TODAY}'",
    )[0]
    now = _query(
        http_url,
        "SELECT COALESCE(SUM(visitors), 0) AS visitors FROM va_site_hourly "
        f"WHERE hour = CAST('{THIS_HOUR}' AS TIMESTAMPTZ)",
    )[0]
    pages = _query(
        http_url,
        "SELECT path, SUM(views) AS views, SUM(visitors) AS visitors FROM va_pages_daily "
        f"WHERE date = DATE '{TODAY}' GROUP BY path ORDER BY views DESC, path LIMIT 10",
    )
    return {
        "visitors-now": now["visitors"],
        "visitors-today": day["visitors"],
        "views-today": day["views"],
        "visits-today": day["visits"],
        "pages": [[p["path"], p["views"], p["visitors"]] for p in pages],
    }


_SHOWN = """() => {
  const value = (id) => Number(document.querySelector(`[data-metric="${id}"]`)?.dataset.value);
  const shown = {};
  for (const id of ["visitors-now", "visitors-today", "views-today", "visits-today"]) {
    shown[id] = value(id);
  }
  shown.pages = [...document.querySelectorAll("#pages tbody tr")].map(
    (tr) => [tr.dataset.path, Number(tr.dataset.views), Number(tr.dataset.visitors)]);
  return shown;
}"""


def _wait_until_shown(page: Page, expected: dict, timeout_s: float = 30) -> None:
    """The page shows `expected` within the time; else the difference, plainly."""
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout_s)
    while dt.datetime.now() < deadline:
        if page.evaluate(_SHOWN) == expected:
            return
        page.wait_for_timeout(200)
    assert page.evaluate(_SHOWN) == expected


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open(browser: Browser, url: str, width: int, height: int) -> Page:
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert errors == []
    return page


def test_the_dashboard_follows_puts_and_resumes_after_a_kill(tmp_path, browser):
    port, http_port = _free_port(), _free_port()
    http_url = f"http://127.0.0.1:{http_port}"
    url = f"{http_url}/?now={NOW.isoformat().replace('+00:00', 'Z')}"
    with _serve(tmp_path, port, http_port):
        page = _open(browser, url, 1280, 860)
        assert page.inner_text("#status") == "Live"
        assert page.is_visible("#pages-empty") and page.is_visible("#chart-empty")
        _wait_until_shown(page, _expected(http_url))  # all zero, no pages

        with flight.connect(f"grpc://127.0.0.1:{port}") as client:
            put_events(client, _events(1, 900, 48))
        first = _expected(http_url)
        assert first["views-today"] > 0 and len(first["pages"]) == 10
        _wait_until_shown(page, first)
        assert page.is_hidden("#pages-empty") and page.is_hidden("#chart-empty")

        # A click on a page filters: its numbers, its hourly series.
        top_path = first["pages"][0][0]
        page.click(f'#pages tr[data-path="{top_path}"] button')
        page.wait_for_selector('[data-metric="page-views-today"]')
        shown = page.get_attribute('[data-metric="page-views-today"]', "data-value")
        assert float(shown) == first["pages"][0][1]
        (hour,) = _query(
            http_url,
            "SELECT COALESCE(SUM(view_count), 0) AS views FROM va_pageview_hourly "
            f"WHERE page_url = 'https://example.com{top_path}' "
            f"AND hour = CAST('{THIS_HOUR}' AS TIMESTAMPTZ)",
        )
        assert hour["views"] > 0
        page.wait_for_function(
            "v => document.querySelector('[data-metric=\"page-views-now\"]').dataset.value == v",
            arg=str(int(hour["views"])),
        )
        assert top_path in page.inner_text("#chart-title")
        page.click("#clear")
        page.wait_for_selector('[data-metric="visitors-now"]')

    snapshots = page.get_attribute("body", "data-snapshots")
    # Killed: the page says so, and keeps its tables.
    page.wait_for_function("document.getElementById('status').dataset.state !== 'live'")
    assert re.search("Reconnecting", page.inner_text("#status"))

    with _serve(tmp_path, port, http_port):
        with flight.connect(f"grpc://127.0.0.1:{port}") as client:
            put_events(client, _events(2, 300, 2))  # mostly this hour and today
        second = _expected(http_url)
        assert second["visitors-now"] > first["visitors-now"]
        _wait_until_shown(page, second)
        page.wait_for_function("document.getElementById('status').dataset.state === 'live'")
        # Resumed from its cursors (what it missed, no gap, no double), not reloaded.
        assert page.get_attribute("body", "data-snapshots") == snapshots

        phone = _open(browser, url, 390, 844)
        _wait_until_shown(phone, second)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390

        page.wait_for_timeout(300)  # the last frame painted
        page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_with_auth_the_page_asks_for_a_login_and_goes_live(tmp_path, browser):
    add_user(tmp_path / "auth.toml", "rita", "reader", "rita-pw")
    port, http_port = _free_port(), _free_port()
    with _serve(tmp_path, port, http_port, "--auth-file", "auth.toml"):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"http://127.0.0.1:{http_port}/")
        page.wait_for_selector("#login[open]")
        assert page.inner_text("#status") == "Sign in needed"

        page.fill("#login input[name=user]", "rita")
        page.fill("#login input[name=password]", "not-her-password")
        page.click("#login button[type=submit]")
        page.wait_for_selector("#login-error:not([hidden])")
        assert page.inner_text("#login-error") == "Wrong user or password."

        page.fill("#login input[name=password]", "rita-pw")
        page.click("#login button[type=submit]")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        assert not page.is_visible("#login")
        page.wait_for_function("document.getElementById('status').dataset.state === 'live'")
        assert page.get_attribute('[data-metric="views-today"]', "data-value") == "0"


def test_with_single_sign_on_the_page_signs_in_at_the_provider_and_goes_live(tmp_path, browser):
    port, http_port = _free_port(), _free_port()
    dashboard = f"http://127.0.0.1:{http_port}/"
    with serving(new_provider()) as idp:
        sso = ["--oidc-issuer", idp.url, "--oidc-audience", AUDIENCE,
               "--oidc-client-id", DASHBOARD_CLIENT]  # fmt: skip
        with _serve(tmp_path, port, http_port, *sso):
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(dashboard + "?page=/pricing")
            page.wait_for_selector("#login[open]")
            page.click("#sso")  # to the provider, which signs in at once, and back
            page.wait_for_selector("body[data-ready=true]", timeout=30_000)
            page.wait_for_function("document.getElementById('status').dataset.state === 'live'")
            assert not page.is_visible("#login")
            # The code left the address bar; the page's own query came back.
            back = urllib.parse.urlsplit(page.url)
            assert urllib.parse.parse_qs(back.query) == {"page": ["/pricing"]}
            (asked,) = idp.token_requests
            assert asked["client_id"] == DASHBOARD_CLIENT and asked["redirect_uri"] == dashboard
            page.wait_for_selector('[data-metric="page-views-today"][data-value="0"]')

            # The access token expires (here: one the server no longer takes): the next
            # stream is refused, and the page renews the token with its refresh token
            # instead of asking again.
            page.evaluate("sessionStorage.setItem('flightdeck-token', 'expired')")
            page.fill("#page", "/docs")
            page.press("#page", "Enter")
            page.wait_for_function(
                "document.getElementById('status').dataset.state === 'live' && "
                "sessionStorage.getItem('flightdeck-token') !== 'expired'",
                timeout=30_000,
            )
            assert not page.is_visible("#login")
            renewed = [f for f in idp.token_requests if f["grant_type"] == "refresh_token"]
            assert len(renewed) == 1 and renewed[0]["client_id"] == DASHBOARD_CLIENT
            page.wait_for_selector('[data-metric="page-views-today"][data-value="0"]')

            # A refresh token the provider no longer takes: the page asks for a sign-in.
            page.evaluate(
                "sessionStorage.setItem('flightdeck-token', 'expired'); "
                "sessionStorage.setItem('flightdeck-sso-refresh', 'revoked')"
            )
            page.fill("#page", "/pricing")
            page.press("#page", "Enter")
            page.wait_for_selector("#login[open]")

            # A sign-in the provider refuses says why, and the page asks again.
            page.evaluate(
                "sessionStorage.clear(); sessionStorage.setItem('flightdeck-sso', "
                "JSON.stringify({verifier: 'v', state: 'made-up', search: ''}))"
            )
            page.goto(dashboard + "?code=made-up&state=made-up")
            page.wait_for_selector("#login-error:not([hidden])")
            assert "gave no token: invalid_grant" in page.inner_text("#login-error")
