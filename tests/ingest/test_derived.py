"""The derived dimensions' rules, one table per rule, and the vectorised function
against a row-at-a-time reference."""

from __future__ import annotations

import json
import re
import urllib.parse

import pyarrow as pa
import pytest
from flightdeck.ingest.derived import DERIVED_SCHEMA, derive
from flightdeck.ingest.derived.agents import describe
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.stream import _AGENTS


def _one(page_url="/", referrer=None, user_agent=None, properties=None, keep=()) -> dict:
    batch = pa.RecordBatch.from_pydict(
        {
            "page_url": pa.array([page_url], pa.string()),
            "referrer": pa.array([referrer], pa.string()),
            "user_agent": pa.array([user_agent], pa.string()),
            "properties": pa.array([properties], pa.string()),
        }
    )
    return derive(batch, keep).to_pylist()[0]


@pytest.mark.parametrize(
    ("page_url", "keep", "path", "host"),
    [
        (None, (), None, None),  # events of other types may have no page
        ("/", (), "/", None),
        ("/pricing", (), "/pricing", None),
        ("/pricing/", (), "/pricing", None),
        ("/docs//", (), "/docs", None),
        ("docs/a", (), "/docs/a", None),
        ("/Docs/A", (), "/Docs/A", None),  # case kept, as Plausible does
        ("/a%20b/", (), "/a%20b", None),  # percent-encoding left as sent
        ("/a?x=1&y=2", (), "/a", None),
        ("/a#top", (), "/a", None),
        ("/a/?x=1#top", (), "/a", None),
        ("?x=1", (), "/", None),
        ("/a:b", (), "/a:b", None),  # no `//`: a path, not a scheme
        ("https://www.Example.com", (), "/", "www.example.com"),
        ("https://www.example.com/", (), "/", "www.example.com"),
        ("https://EXAMPLE.com:8443/Shop/?q=1#x", (), "/Shop", "example.com"),
        ("http://user:pw@example.com./a", (), "/a", "example.com"),
        ("//example.com/a/", (), "/a", "example.com"),
        ("/search?q=x&page=2&utm_source=y", ("page", "q"), "/search?q=x&page=2", None),
        ("/search/?utm_source=y#f", ("page",), "/search", None),
        ("https://e.com/?page=3", ("page",), "/?page=3", "e.com"),
    ],
)
def test_path_and_host(page_url, keep, path, host):
    got = _one(page_url, keep=keep)
    assert (got["path"], got["host"]) == (path, host)


@pytest.mark.parametrize(
    ("page_url", "referrer", "properties", "expected"),
    [
        # (referrer_host, source, medium, campaign)
        ("/", None, None, (None, "direct", "none", None)),
        ("/", "", None, (None, "direct", "none", None)),
        ("/", "not a url", None, (None, "direct", "none", None)),
        (
            "/",
            "https://www.Google.com/search?q=x",
            None,
            ("google.com", "google.com", "referral", None),
        ),
        ("/", "android-app://com.slack/", None, ("com.slack", "com.slack", "referral", None)),
        ("/", "https://t.co:443/x", None, ("t.co", "t.co", "referral", None)),
        # internal navigation: the referrer is the page's own site, no source
        (
            "https://www.example.com/b",
            "https://example.com/a",
            None,
            ("example.com", None, None, None),
        ),
        (
            "https://example.com/b",
            "https://www.example.com/a",
            None,
            ("example.com", None, None, None),
        ),
        # a bare page path has no host to compare with: the referrer is external
        ("/b", "https://www.example.com/a", None, ("example.com", "example.com", "referral", None)),
        # UTM in the page's query wins over the referrer, internal or not
        (
            "/?utm_source=news%20letter&utm_medium=email&utm_campaign=spring+sale",
            "https://www.google.com/",
            None,
            ("google.com", "news letter", "email", "spring sale"),
        ),
        ("https://e.com/?utm_source=x", "https://e.com/", None, ("e.com", "x", None, None)),
        ("/?utm_source=&utm_medium=cpc", None, None, (None, "direct", "cpc", None)),
        ("/?xutm_source=a", None, None, (None, "direct", "none", None)),
        ("/#utm_source=a", None, None, (None, "direct", "none", None)),
        # else UTM in the properties (top-level text values only)
        ("/", None, '{"utm_source": "fb", "utm_campaign": "c1"}', (None, "fb", None, "c1")),
        ("/?utm_source=q", None, '{"utm_source": "p", "utm_medium": "m"}', (None, "q", "m", None)),
        ("/", None, '{"a": {"utm_source": "nested"}}', (None, "direct", "none", None)),
        ("/", None, '{"utm_source": 3}', (None, "direct", "none", None)),
        ("/", None, '["utm_source"]', (None, "direct", "none", None)),
    ],
)
def test_referrer_and_sources(page_url, referrer, properties, expected):
    got = _one(page_url, referrer, properties=properties)
    assert (got["referrer_host"], got["source"], got["medium"], got["campaign"]) == expected


_ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (_AGENTS[0][0], ("Chrome", "Windows", "desktop")),
        (_AGENTS[3][0], ("Safari", "Mac OS X", "desktop")),
        (_AGENTS[4][0], ("Firefox", "Windows", "desktop")),
        (_AGENTS[5][0], ("Edge", "Windows", "desktop")),
        (_AGENTS[7][0], ("Chrome", "Linux", "desktop")),
        (_AGENTS[1][0], ("Mobile Safari UI/WKWebView", "iOS", "mobile")),
        (
            f"{_ANDROID} Chrome/126.0.0.0 Mobile Safari/537.36",
            ("Chrome Mobile", "Android", "mobile"),
        ),
        (_AGENTS[6][0], ("Mobile Safari UI/WKWebView", "iOS", "tablet")),  # iPad
        # Android without "Mobile" is a tablet (Google's advice to sites)
        (f"{_ANDROID} Chrome/126.0.0.0 Safari/537.36", ("Chrome", "Android", "tablet")),
        (_AGENTS[9][0], ("Googlebot", None, "bot")),
        (_AGENTS[10][0], ("bingbot", None, "bot")),
        (_AGENTS[11][0], ("AhrefsBot", None, "bot")),
        ("curl/8.5.0", ("curl", None, "bot")),
        ("python-requests/2.31", ("Python Requests", None, "bot")),
        (None, (None, None, "unknown")),
        ("", (None, None, "unknown")),
        ("   ", (None, None, "unknown")),
        ("garbage", (None, None, "unknown")),
    ],
)
def test_browser_os_device(user_agent, expected):
    got = _one(user_agent=user_agent)
    assert (got["browser"], got["os"], got["device"]) == expected


def _reference(page_url, referrer, user_agent, properties, keep) -> dict:
    """One row by urllib and json: the rules as docs/metrics.md states them."""
    has_authority = bool(re.match(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//", page_url))
    rest = page_url.split("#", 1)[0]
    path_part, _, query = rest.partition("?")
    if has_authority:
        path_part = "/" + path_part.split("//", 1)[1].partition("/")[2]
    path = "/" + path_part.lstrip("/")
    path = path.rstrip("/") or "/"
    kept = [p for p in query.split("&") if p.split("=", 1)[0] in keep] if "?" in rest else []
    if kept:
        path += "?" + "&".join(kept)
    host = _host(page_url) if has_authority else None
    ref_host = _host(referrer) if referrer else None
    if ref_host and ref_host.startswith("www."):
        ref_host = ref_host[4:]
    props = {}
    if properties:
        value = json.loads(properties)
        props = value if isinstance(value, dict) else {}
    utm = {}
    for name in ("utm_source", "utm_medium", "utm_campaign"):
        from_query = None
        if "?" in rest:
            for pair in query.split("&"):
                key, _, value = pair.partition("=")
                if key == name:
                    from_query = urllib.parse.unquote_plus(value) or None
                    break
        from_props = props.get(name)
        utm[name] = from_query or (
            from_props if isinstance(from_props, str) and from_props else None
        )
    site = host[4:] if host and host.startswith("www.") else host
    internal = ref_host is not None and ref_host == site
    if utm["utm_source"]:
        source, medium = utm["utm_source"], utm["utm_medium"]
    elif internal:
        source, medium = None, utm["utm_medium"]
    elif ref_host:
        source, medium = ref_host, utm["utm_medium"] or "referral"
    else:
        source, medium = "direct", utm["utm_medium"] or "none"
    browser, os, device = describe(user_agent)
    return {
        "path": path,
        "host": host,
        "referrer_host": ref_host,
        "source": source,
        "medium": medium,
        "campaign": utm["utm_campaign"],
        "browser": browser,
        "os": os,
        "device": device,
    }


def _host(url: str) -> str | None:
    found = re.match(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//([^/?#]*)", url, re.S)
    if not found:
        return None
    host = re.sub(r"\.$", "", re.sub(r":[0-9]*$", "", found.group(1).rsplit("@", 1)[-1]))
    return host.lower() or None


_PIECES = st.sampled_from(
    [
        "/",
        "a",
        "A",
        "/b/",
        "?",
        "#",
        "&",
        "=",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "page",
        "%20",
        "+",
        "https://",
        "//",
        "www.",
        "example.com",
        ":80",
        "@",
        ".",
    ]
)
_URL = st.lists(_PIECES, min_size=1, max_size=10).map("".join)
_PROPS = st.sampled_from(
    [
        None,
        "{}",
        '{"utm_source": "p"}',
        '{"utm_medium": "m", "utm_campaign": "c"}',
        "[1]",
        '{"utm_source": ""}',
    ]
)
_UA = st.sampled_from([None, "", "x", *(a for a, _ in _AGENTS)])


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(_URL, st.one_of(st.none(), _URL), _UA, _PROPS), min_size=1, max_size=30
    ),
    keep=st.sampled_from([(), ("page",), ("page", "utm_source")]),
)
def test_the_vectorised_function_equals_a_row_at_a_time_reference(rows, keep):
    page_url, referrer, user_agent, properties = map(list, zip(*rows, strict=True))
    batch = pa.RecordBatch.from_pydict(
        {
            "page_url": page_url,
            "referrer": pa.array(referrer, pa.string()),
            "user_agent": pa.array(user_agent, pa.string()),
            "properties": pa.array(properties, pa.string()),
        }
    )
    got = derive(batch, keep)
    assert got.schema == DERIVED_SCHEMA
    assert got.to_pylist() == [_reference(*row, keep) for row in rows]
