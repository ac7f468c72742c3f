"""Events of any type over NATS (issue 19): `events.TYPE` in, `events.dead.TYPE` for
dead letters, one commit per type, on both backends with a real nats-server."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from types import SimpleNamespace

import nats
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.background import Background
from flightdeck.ingest.nats_worker import IngestWorker
from flightdeck.ingest.rollup_install import install
from flightdeck.ingest.streams import EVENTS, ensure_stream
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

from tests import nats_client
from tests.services import wait_for

_DECLARED = """
[types."api.request"]
required = {duration_ms = "float", service = "string"}
"""


def _event(i: int, **values: object) -> dict:
    return {"session_id": f"s{i % 3}", "timestamp": f"2024-01-15T10:{i:02d}:00Z", **values}


def _login(i: int, **values: object) -> dict:
    return _event(i, user_id=f"u{i}", **values)


def _request(i: int, **properties: object) -> dict:
    return _event(i, properties={"duration_ms": 10.0 * i, "service": "api", **properties})


def _pageview(i: int) -> dict:
    return _event(i, page_url=f"/p{i % 2}")


@pytest.fixture
def serve(store, nats_server, tmp_path):
    """Start the server's background loop and a Flight server with `settings`."""
    started = []

    def start(**settings: object) -> SimpleNamespace:
        config = Settings(
            port=0, data_dir=tmp_path, ingest_wait_ms=20, raw_retention_days=0, **settings
        )
        background = Background(config, store, nats_server.url, worker=True).start()
        assert background.wait_ready(10)
        server = FlightdeckServer(config, store, committed=background.committed)
        client = flight.connect(f"grpc://127.0.0.1:{server.port}")
        started.append((client, server, background))
        return SimpleNamespace(client=client, url=nats_server.url, store=store)

    yield start
    for client, server, background in started:
        client.close()
        server.shutdown()
        background.stop()


def _sql(client, sql: str) -> list[dict]:
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()))
    return client.do_get(info.endpoints[0].ticket).read_all().to_pylist()


def _typed(client, event_type: str) -> list[dict]:
    return _sql(
        client,
        "SELECT event_id, event_type, session_id, user_id, properties FROM va_event "
        f"WHERE event_type = '{event_type}' ORDER BY recorded_at",
    )


def _settle(url: str) -> None:
    assert wait_for(lambda: nats_client.settled(url), timeout=30)


def _props(row: dict) -> dict:
    value = row["properties"]
    return json.loads(value) if isinstance(value, str) else value


def _publish_mixed(url: str, messages: list[tuple[str, dict | bytes]]) -> None:
    """Core-NATS publishes, all at once: they reach the worker in one fetched batch."""

    async def go() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        before = (await js.stream_info("EVENTS")).state.last_seq
        for subject, payload in messages:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            await nc.publish(subject, data)
        await nc.flush()
        while (await js.stream_info("EVENTS")).state.last_seq < before + len(messages):
            await asyncio.sleep(0.01)
        await nc.close()

    asyncio.run(go())


def test_user_login_and_api_request_events_are_served_by_va_event(serve):
    live = serve()
    nats_client.publish(live.url, [_login(i) for i in range(3)], subject="events.user.login")
    nats_client.publish(live.url, [_request(i) for i in range(2)], subject="events.api.request")
    _settle(live.url)
    logins = _typed(live.client, "user.login")
    pairs = [(r["session_id"], r["user_id"]) for r in logins]
    assert pairs == [("s0", "u0"), ("s1", "u1"), ("s2", "u2")]
    requests = _typed(live.client, "api.request")
    assert [_props(r)["duration_ms"] for r in requests] == [0.0, 10.0]
    assert nats_client.messages(live.url, "events.dead.>", timeout=0.3) == []
    # Page views are where they always were, and only there.
    assert _sql(live.client, "SELECT count(*) AS n FROM va_pageview_event") == [{"n": 0}]


def test_a_mixed_batch_commits_once_per_type_and_acks_every_message(store, nats_server):
    messages = [
        ("events.pageview", _pageview(0)),
        ("events.user.login", _login(1)),
        ("events.pageview", _pageview(2)),
        ("events.api.request", _request(3)),
        ("events.user.login", _login(4)),
        ("events.pageview", _pageview(5)),
    ]
    options = Settings(ingest_batch=100, ingest_wait_ms=300).worker_options()
    commits: list[int] = []

    async def run() -> None:
        nc = await nats.connect(nats_server.url)
        worker = IngestWorker(store, nc, options, on_commit=lambda r: commits.append(r.accepted))
        puller = await worker._subscribe()  # creates the stream and the durable consumer
        await asyncio.to_thread(_publish_mixed, nats_server.url, messages)
        fetched = await worker._collect(puller)
        assert len(fetched) == 6
        await worker.handle(fetched)
        await puller.close()
        await nc.close()

    asyncio.run(run())
    assert commits == [3, 2, 1]  # page views, user.login, api.request: in order of arrival
    assert nats_client.settled(nats_server.url)
    query = "SELECT event_type, count(*) AS n FROM va_event GROUP BY event_type ORDER BY event_type"
    with store.read_internal(query) as reader:
        counts = reader.read_all().to_pylist()
    assert counts == [
        {"event_type": "api.request", "n": 1},
        {"event_type": "pageview", "n": 3},
        {"event_type": "user.login", "n": 2},
    ]


def test_a_poison_typed_message_is_dead_lettered_on_its_type_and_the_rest_commit(serve):
    live = serve()
    poison = [
        b"not json at all",
        _event(1, user_id="u1", session_id=None),  # no session
        _login(2, timestamp="next tuesday"),
    ]
    good = [_login(i) for i in range(3, 6)]
    _publish_mixed(
        live.url,
        [("events.user.login", m) for m in [good[0], *poison, *good[1:]]]
        + [("events.pageview", _pageview(9))],
    )
    _settle(live.url)
    assert [r["user_id"] for r in _typed(live.client, "user.login")] == ["u3", "u4", "u5"]
    assert _sql(live.client, "SELECT count(*) AS n FROM va_pageview_event") == [{"n": 1}]
    dead = nats_client.messages(live.url, "events.dead.user.login")
    reasons = [m.headers["Flightdeck-Reason"] for m in dead]
    assert len(reasons) == 3, reasons
    assert reasons[0].startswith("not JSON")
    assert "missing 'session_id'" in reasons[1]
    assert "[timestamp] timestamp" in reasons[2] and "next tuesday" in reasons[2]
    assert {m.headers["Flightdeck-Subject"] for m in dead} == {"events.user.login"}
    assert dead[0].data == b"not json at all"
    assert nats_client.messages(live.url, "events.dead.pageview", timeout=0.3) == []


def test_a_subject_naming_no_type_is_dead_lettered_with_the_reason(serve):
    live = serve()
    _publish_mixed(
        live.url,
        [("events.User-Login", _login(1)), ("events.user.login", _login(2))],
    )
    _settle(live.url)
    assert [r["user_id"] for r in _typed(live.client, "user.login")] == ["u2"]
    (dead,) = nats_client.messages(live.url, "events.dead.User-Login")
    reason = dead.headers["Flightdeck-Reason"]
    assert reason.startswith("[event-type] event_type:") and "'User-Login'" in reason, reason
    assert dead.headers["Flightdeck-Subject"] == "events.User-Login"
    # Dead letters are in the consumer's `events.>` too: acked, never ingested.
    count = "SELECT count(*) AS n FROM va_event"
    assert _sql(live.client, count) == [{"n": 1}]


def test_extra_json_keys_of_a_typed_event_are_kept_in_properties(serve):
    live = serve()
    messages = [
        _login(0),  # no extras: the bulk path
        _login(1, plan="pro", seats=3, properties={"source": "sso"}),
        _login(2, plan="free", properties={"plan": "own wins"}),  # the sender's own wins
        _login(3, tags=["a", "b"], properties='{"text": true}'),  # properties as JSON text
        _login(4, nothing=None),  # nulls are left out
    ]
    nats_client.publish(live.url, messages, subject="events.user.login")
    nats_client.publish(live.url, [{**_pageview(5), "plan": "x"}])  # page views: ignored
    _settle(live.url)
    props = [_props(r) for r in _typed(live.client, "user.login")]
    assert props == [
        None,
        {"plan": "pro", "seats": 3, "source": "sso"},
        {"plan": "own wins"},
        {"tags": ["a", "b"], "text": True},
        None,
    ]
    (pageview,) = _sql(live.client, "SELECT properties FROM va_pageview_event")
    assert pageview["properties"] is None


def test_a_declared_type_violation_is_dead_lettered_naming_the_property(serve, tmp_path):
    declared = tmp_path / "types.toml"
    declared.write_text(_DECLARED)
    live = serve(event_types=declared)
    bad_kind = _event(2, properties={"duration_ms": "slow", "service": "api"})
    missing = _event(3, properties={"duration_ms": 5})
    nats_client.publish(
        live.url, [_request(1), bad_kind, missing, _request(4)], subject="events.api.request"
    )
    _settle(live.url)
    assert [_props(r)["duration_ms"] for r in _typed(live.client, "api.request")] == [10.0, 40.0]
    dead = nats_client.messages(live.url, "events.dead.api.request")
    reasons = [m.headers["Flightdeck-Reason"] for m in dead]
    assert len(reasons) == 2, reasons
    assert reasons[0].startswith("[declared-type] properties.duration_ms:"), reasons
    assert "must be float" in reasons[0]
    assert reasons[1] == "[declared-type] properties.service: required (string)"


@pytest.mark.slow  # waits out an ack deadline
def test_an_old_pageview_only_consumer_moves_to_every_type_keeping_pending_messages(
    serve, nats_server
):
    async def old_flightdeck() -> None:
        # An older flightdeck's consumer, and a message it received but never acked.
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await ensure_stream(js, EVENTS)
        await nats_client.add_old_consumer(js, max_ack_pending=50, ack_wait=2.0)
        for i in range(3):
            await js.publish("events.pageview", json.dumps(_pageview(i)).encode())
        pull = await js.pull_subscribe_bind("flightdeck-ingest", "EVENTS")
        (held,) = await pull.fetch(1)  # then "crashed": never acked
        assert held.metadata.sequence.stream == 1
        await nc.close()

    asyncio.run(old_flightdeck())
    live = serve()
    nats_client.publish(live.url, [_login(7)], subject="events.user.login")
    _settle(live.url)
    assert _sql(live.client, "SELECT count(*) AS n FROM va_pageview_event") == [{"n": 3}]
    assert [r["user_id"] for r in _typed(live.client, "user.login")] == ["u7"]
    info = nats_client.consumer(live.url)
    assert info.config.filter_subjects == ["events.>"] and not info.config.filter_subject
    assert (info.config.max_ack_pending, info.config.ack_wait) == (50, 2.0)  # kept


def test_a_typed_nats_event_counts_in_the_installed_rollups(serve, store):
    install(store, load_rollups([BUILTIN_DIR]))
    live = serve()
    logins = [_login(i, session_id=f"visit-{i}") for i in range(4)]  # four users, four visits
    nats_client.publish(live.url, logins, subject="events.user.login")
    _settle(live.url)
    rows = _sql(
        live.client,
        "SELECT event_type, events, visitors FROM va_events_daily WHERE event_type = 'user.login'",
    )
    assert rows == [{"event_type": "user.login", "events": 4, "visitors": 4}]


def _readme_snippet() -> str:
    """The README's typed-event snippet ("Publish events to NATS"), as printed there; the
    test puts its server's address and login in place of PORT and PASSWORD."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    (snippet,) = [b for b in blocks if "events.user.login" in b and "nats.connect" in b]
    return snippet


def test_the_readme_snippet_publishes_typed_events(serve):
    live = serve()
    code = (
        _readme_snippet()
        .replace("nats://127.0.0.1:PORT", live.url)
        .replace(', user="writer", password=PASSWORD', "")
    )
    exec(compile(code, "README (typed events over NATS)", "exec"), {})
    _settle(live.url)
    (login,) = _typed(live.client, "user.login")
    assert (login["user_id"], _props(login)) == ("u-42", {"method": "sso"})
    (request,) = _typed(live.client, "api.request")
    assert _props(request)["duration_ms"] == 38.5
