"""The embedded nats-server of `flightdeck serve` lets in only flightdeck and its writers.

A real `flightdeck serve` (both backends) and real NATS clients: an anonymous
client is refused outright; a writer, with the credentials `flightdeck
nats-credentials` prints, may publish events and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import nats
import pytest

from tests import nats_client
from tests.faults.processes import Flightdeck
from tests.faults.workload import count, flight_query
from tests.services import wait_for

EVENT = {"session_id": "w", "page_url": "/from-writer", "timestamp": "2024-01-15T10:00:00Z"}
FORGED = b"view_count=999999999"


@pytest.fixture
def serving(backend, db_url, tmp_path):
    store = ["--db", db_url] if backend == "postgresql" else []
    serve = Flightdeck(["serve", "--port", "0", "--data-dir", "data", *store], tmp_path)
    serve.start()
    try:
        yield serve
    finally:
        serve.stop()


def _attempt(url: str, subject: str, payload: bytes, **login: str) -> str | None:
    """Publish one message to JetStream as a producer would; the refusal, or None."""

    async def go() -> str | None:
        try:
            nc = await nats.connect(url, allow_reconnect=False, error_cb=_quiet, **login)
        except (nats.errors.Error, OSError) as exc:
            return f"connect: {exc}"
        try:
            await nc.jetstream().publish(subject, payload, timeout=1.0)
            return None
        except nats.errors.Error as exc:  # a denied publish gets no ack
            return f"publish: {exc!r}"
        finally:
            await nc.close()

    return asyncio.run(go())


async def _quiet(exc: Exception) -> None:
    pass


def _writer_login(serve: Flightdeck) -> dict[str, str]:
    """What a writer does: ask flightdeck for the embedded NATS's publish-only login."""
    pairs = serve.nats_credentials()
    return {"user": pairs["NATS_USER"], "password": pairs["NATS_PASSWORD"]}


def _stored(serve: Flightdeck, subject: str) -> list[bytes]:
    return [m.data for m in nats_client.messages(serve.nats_url, subject, timeout=0.3)]


def test_an_anonymous_client_can_publish_nothing(serving):
    url = serving.ready_nats_url
    for subject in ("events.pageview", "events.other", "analytics.aggregate.updated"):
        refused = _attempt(url, subject, FORGED)
        assert refused is not None and "Authorization Violation" in refused, subject
    assert FORGED not in _stored(serving, "analytics.aggregate.updated")
    assert FORGED not in _stored(serving, "events.>")


@pytest.mark.slow  # a long run (processes, waits): make test runs it
def test_a_writer_publishes_events_and_nothing_else(serving):
    url, login = serving.ready_nats_url, _writer_login(serving)
    assert login["user"] != "flightdeck"
    assert _attempt(url, "events.pageview", json.dumps(EVENT).encode(), **login) is None
    query = flight_query(serving.location)
    where = "WHERE page_url = '/from-writer'"
    assert wait_for(lambda: count(query, where) == 1, timeout=30), serving.log()
    for subject in ("analytics.aggregate.updated", "events.dead.pageview", "$JS.API.STREAM.LIST"):
        refused = _attempt(url, subject, FORGED, **login)
        assert refused is not None, subject
    assert FORGED not in _stored(serving, "analytics.aggregate.updated")
    assert FORGED not in _stored(serving, "events.dead.pageview")


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_the_generated_nats_secrets_are_private_to_their_owner(serving):
    data = Path(serving.cwd) / "data"
    secrets = [
        p for p in data.rglob("*") if p.suffix in (".conf", ".json") and "jetstream" not in p.parts
    ]
    assert secrets, sorted(p.name for p in data.rglob("*"))
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    text = "\n".join(p.read_text() for p in secrets)
    assert _writer_login(serving)["password"] in text
