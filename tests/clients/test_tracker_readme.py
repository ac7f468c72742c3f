"""The tracker's README snippet (section "Python client and CLI") runs as written
against a real server, on both backends, and prints what the README shows."""

from __future__ import annotations

import contextlib
import io

SNIPPET = """
import logging

import flightdeck

logging.basicConfig()  # the tracker logs retries and losses as warnings

with flightdeck.connect(
    "grpc://127.0.0.1:8815",
    track_batch=500,  # send when 500 events wait…
    track_interval_s=1.0,  # …or every second
    track_queue=10_000,  # beyond this, the oldest queued events are dropped (counted)
    on_track_error=lambda failure: print("given up:", failure),
) as client:
    # In a request handler: returns at once, never raises for a failed send.
    client.track(
        "pageview",
        session_id="s-1",
        user_id="u-7",
        page_url="/pricing",
        referrer="https://example.com/",
        plan="pro",  # not a core field: sent inside `properties`
    )
    client.tracker.flush(timeout_s=5)  # optional: close() and exit flush too
    print(client.tracker.stats())
"""

OUTPUT = "TrackStats(queued=0, sent=1, failed=0, dropped=0, retried=0)\n"


def test_the_tracker_snippet_prints_what_the_readme_shows(location, fd):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(SNIPPET.replace("grpc://127.0.0.1:8815", location), {})
    assert printed.getvalue() == OUTPUT
    row = fd.query("SELECT user_id, page_url, properties FROM va_pageview_event").to_pylist()
    assert [(r["user_id"], r["page_url"], '"plan"' in r["properties"]) for r in row] == [
        ("u-7", "/pricing", True)
    ]
