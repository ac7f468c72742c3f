"""Fault: the embedded nats-server SIGKILLed under a running `flightdeck serve`.

serve notices, says why in its log, and starts it again on the same port and
JetStream store (backing off if it keeps dying); the NATS connection
reconnects by itself, events published afterwards are ingested, and health
is ok again. An outage is a few log lines, not one every reconnect attempt.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import nats
import pyarrow.flight as flight

from tests import nats_client
from tests.services import wait_for

from .processes import Flightdeck, _alive, _children
from .workload import count, flight_query

HEALTH = flight.Action("health", b"")


def _nats_server(serve: Flightdeck) -> int | None:
    """The pid of serve's embedded nats-server, while one runs."""
    for pid in _children(serve.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"nats-server" in command and _alive(pid):
            return pid
    return None


def _health(location: str) -> dict:
    with flight.connect(location) as client:
        (result,) = list(client.do_action(HEALTH))
        return json.loads(result.body.to_pybytes())


def _published(url: str, events: list[dict]) -> bool:
    try:
        nats_client.publish(url, events)
    except (nats.errors.Error, OSError):
        return False
    return True


def test_a_sigkilled_embedded_nats_server_is_restarted(backend, db_url, tmp_path):
    store = ["--db", db_url] if backend == "postgresql" else []
    serve = Flightdeck(["serve", "--port", "0", "--data-dir", "data", *store], tmp_path)
    serve.start()
    try:
        query = flight_query(serve.location)
        writer = nats_client.embedded_url(serve.ready_nats_url, serve.data_dir, "writer")
        assert _published(writer, [_event("/before", 0)])
        assert wait_for(lambda: count(query) == 1, timeout=30), serve.log()
        first = _nats_server(serve)
        assert first is not None, serve.log()
        live = flight.connect(serve.location)
        request = json.dumps(
            {"subscribe": "va_pageview_aggregate", "where": {"page_url": "/after"}}
        )
        _writer, updates = live.do_exchange(flight.FlightDescriptor.for_command(request.encode()))
        logged = len(serve.lines)

        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: _nats_server(serve) not in (None, first), timeout=30), serve.log()
        after = [_event("/after", i) for i in range(5)]
        assert wait_for(lambda: _published(writer, after), timeout=30), serve.log()
        assert wait_for(lambda: count(query) == 6, timeout=30), serve.log()
        assert wait_for(lambda: _health(serve.location)["status"] == "ok", timeout=30)
        assert _health(serve.location)["nats"] == "connected"
        # Live subscribers follow the update log again too.
        assert _first_update(updates) == [("/after", 5)], serve.log()
        updates.cancel()
        live.close()

        outage = serve.lines[logged:]
        restarts = [line for line in outage if "nats-server exited" in line]
        assert restarts and "code=-9" in restarts[0], "\n".join(outage)
        warnings = [line for line in outage if "level=WARNING" in line or "level=ERROR" in line]
        assert len(warnings) <= 4, "\n".join(outage)
        assert serve.running()
    finally:
        serve.stop()


def _first_update(reader) -> list[tuple[str, int]]:
    while True:
        chunk = reader.read_chunk()
        if json.loads(chunk.app_metadata.to_pybytes())["type"] == "update":
            return [(r["page_url"], r["view_count"]) for r in chunk.data.to_pylist()]


def _event(page: str, minute: int) -> dict:
    # An id of our own: a publish retried after a partial failure is a duplicate, not a new view.
    return {
        "event_id": f"{page}-{minute}",
        "session_id": f"s{minute}",
        "page_url": page,
        "timestamp": f"2024-01-15T10:{minute:02d}:00Z",
    }
