"""`Client.track` against a real server, on both backends: batches, flush on close and
at exit, retries while the server is down, refused batches, the bounded queue."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import flightdeck
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings

from tests.services import free_port, wait_for

HOUR = 3600.0  # an interval that never elapses during a test: only size, flush and close send


def _stored(fd: flightdeck.Client) -> list[str]:
    rows = fd.query("SELECT event_id FROM va_pageview_event ORDER BY event_id").to_pylist()
    return [row["event_id"] for row in rows]


def _view(client: flightdeck.Client, n: int, prefix: str = "e") -> list[str]:
    return [
        client.track("pageview", event_id=f"{prefix}{i}", session_id="s-1", page_url=f"/p{i}")
        for i in range(n)
    ]


def test_full_batches_go_at_once_and_the_rest_on_flush(location, fd):
    with flightdeck.connect(location, track_batch=10, track_interval_s=HOUR) as client:
        started = time.perf_counter()
        _view(client, 25)
        assert time.perf_counter() - started < 0.5  # queued, not sent, on this thread
        assert wait_for(lambda: client.tracker.stats().sent == 20)
        assert client.tracker.stats().queued == 5  # not a full batch: waits for the interval
        assert client.tracker.flush(timeout_s=10)
        assert client.tracker.stats() == flightdeck.TrackStats(0, 25, 0, 0, 0)
    assert _stored(fd) == sorted(f"e{i}" for i in range(25))


def test_the_interval_sends_a_partial_batch(location, fd):
    with flightdeck.connect(location, track_batch=1000, track_interval_s=0.2) as client:
        _view(client, 3)
        assert wait_for(lambda: client.tracker.stats().sent == 3)
    assert len(_stored(fd)) == 3


def test_close_sends_what_is_queued(location, fd):
    client = flightdeck.connect(location, track_batch=1000, track_interval_s=HOUR)
    _view(client, 7)
    assert client.tracker.stats().sent == 0
    client.close()
    assert client.tracker.stats().sent == 7
    assert len(_stored(fd)) == 7


def test_defaults_fill_the_core_fields_and_extras_go_into_properties(location, fd):
    with flightdeck.connect(location) as client:
        event_id = client.track("pageview", session_id="s", page_url="/", plan="pro", n=2)
    assert len(event_id) == 32  # uuid4 hex
    row = fd.query("SELECT event_id, recorded_at, properties FROM va_pageview_event").to_pylist()[0]
    assert row["event_id"] == event_id
    assert abs(row["recorded_at"].timestamp() - time.time()) < 60
    assert '"plan"' in row["properties"] and '"pro"' in row["properties"]


def test_a_resent_event_id_is_stored_once(location, fd):
    with flightdeck.connect(location, track_batch=1) as client:
        _view(client, 2)
        assert client.tracker.flush(timeout_s=10)
        _view(client, 2)  # as a retry after an unknown outcome sends them again
    assert _stored(fd) == ["e0", "e1"]
    assert client.tracker.stats().sent == 4  # the server answered for all four


def test_exit_sends_what_is_queued(location, fd):
    script = f"""
        import flightdeck
        client = flightdeck.connect({location!r}, track_interval_s=3600)
        for i in range(5):
            client.track("pageview", event_id=f"x{{i}}", session_id="s", page_url="/")
        # no close(): interpreter exit sends them
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], timeout=60)
    assert done.returncode == 0
    assert _stored(fd) == [f"x{i}" for i in range(5)]


@pytest.mark.slow  # a child process that waits out its flush bound
def test_exit_with_the_server_down_gives_up_within_its_bound():
    script = f"""
        import flightdeck
        client = flightdeck.connect("grpc://127.0.0.1:{free_port()}")
        client.tracker.close_timeout_s = 1.0
        client.track("pageview", session_id="s", page_url="/")
    """
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], timeout=60, capture_output=True
    )
    assert done.returncode == 0
    assert time.monotonic() - started < 15  # the daemon thread did not keep it alive
    assert b"dropped" in done.stderr  # the loss is logged


def test_sends_are_retried_until_the_server_is_up(store, tmp_path):
    port = free_port()
    location = f"grpc://127.0.0.1:{port}"
    with flightdeck.connect(location, track_batch=2, track_interval_s=0.1) as client:
        _view(client, 3)
        assert wait_for(lambda: client.tracker.stats().retried >= 2)
        assert client.tracker.stats().sent == 0
        server = FlightdeckServer(Settings(port=port, data_dir=tmp_path), store)
        try:
            assert client.tracker.flush(timeout_s=30)
            stats = client.tracker.stats()
            assert (stats.sent, stats.failed, stats.dropped) == (3, 0, 0)
            assert _stored(client) == ["e0", "e1", "e2"]
        finally:
            server.shutdown()


def test_a_refused_batch_is_reported_with_the_servers_reason_and_not_retried(location, fd):
    failures: list[flightdeck.TrackFailure] = []
    with flightdeck.connect(location, track_interval_s=HOUR, on_track_error=failures.append) as c:
        c.track("pageview", session_id="s")  # no page_url: a page view needs one
        c.track("pageview", session_id="s")
        assert c.tracker.flush(timeout_s=10)
        assert c.tracker.stats() == flightdeck.TrackStats(0, 0, 2, 0, 0)
        _view(c, 1)  # the sender carries on
        assert c.tracker.flush(timeout_s=10)
    [failure] = failures
    assert (failure.event_type, failure.events) == ("pageview", 2)
    assert isinstance(failure.error, flightdeck.LoadError)
    assert (failure.error.rule, failure.error.column) == ("required-column", "page_url")
    assert _stored(fd) == ["e0"]


def test_a_full_queue_drops_the_oldest_events(location, fd):
    with flightdeck.connect(location, track_queue=5, track_interval_s=HOUR) as client:
        _view(client, 8)
        stats = client.tracker.stats()
        assert (stats.queued, stats.dropped) == (5, 3)
    assert _stored(fd) == [f"e{i}" for i in range(3, 8)]
    assert client.tracker.stats() == flightdeck.TrackStats(0, 5, 0, 3, 0)


def test_track_never_waits_on_an_unreachable_server():
    with flightdeck.connect(f"grpc://127.0.0.1:{free_port()}", track_batch=1) as client:
        client.tracker.close_timeout_s = 0.5
        started = time.perf_counter()
        _view(client, 200)
        assert time.perf_counter() - started < 1.0
    stats = client.tracker.stats()
    assert stats.sent == 0 and stats.dropped == 200


def test_track_after_close_is_dropped_not_raised(location):
    client = flightdeck.connect(location)
    client.close()
    client.track("pageview", session_id="s", page_url="/")
    assert client.tracker.stats().dropped == 1


def test_a_typed_event_is_sent(location):
    failures: list[flightdeck.TrackFailure] = []
    with flightdeck.connect(location, on_track_error=failures.append) as client:
        client.track("user.login", user_id="u-1", session_id="s-1", method="password")
        assert client.tracker.flush(timeout_s=10)
    assert failures == []
    assert client.tracker.stats().sent == 1


def test_a_callback_that_raises_does_not_stop_the_sender(location, fd):
    def broken(failure: flightdeck.TrackFailure) -> None:
        raise RuntimeError("a bug in the caller's callback")

    with flightdeck.connect(location, track_batch=1, on_track_error=broken) as client:
        client.track("pageview", session_id="s")  # refused: no page_url
        assert client.tracker.flush(timeout_s=10)
        _view(client, 1)
        assert client.tracker.flush(timeout_s=10)
        assert client.tracker.stats() == flightdeck.TrackStats(0, 1, 1, 0, 0)
    assert _stored(fd) == ["e0"]


def test_an_event_a_refusal_names_is_given_up_and_the_others_are_sent(location, fd):
    failures: list[flightdeck.TrackFailure] = []
    with flightdeck.connect(location, track_interval_s=HOUR, on_track_error=failures.append) as c:
        c.track("pageview", event_id="good-1", session_id="s", page_url="/")
        c.track("pageview", event_id="bad", session_id="s", page_url="/", duration_s=-1.0)
        c.track("pageview", event_id="good-2", session_id="s", page_url="/")
        assert c.tracker.flush(timeout_s=10)
        assert c.tracker.stats() == flightdeck.TrackStats(0, 2, 1, 0, 0)
    [failure] = failures
    assert (failure.events, failure.error.column, failure.error.row) == (1, "duration_s", 1)
    assert _stored(fd) == ["good-1", "good-2"]
