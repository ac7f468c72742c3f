"""The live views' schemas are read from the catalog once, not per subscribe."""

from __future__ import annotations

import json

import pytest
from flightdeck.flight_server.live import schemas as live_schemas
from flightdeck.flight_server.live.schemas import LiveSchemas
from flightdeck.views import InvalidQuery, describe


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def catalog_reads(monkeypatch) -> list[int]:
    """How often the catalog is read (the real `describe`, counted)."""
    reads: list[int] = []

    def counted(store, *args):
        reads.append(1)
        return describe(store, *args)

    monkeypatch.setattr(live_schemas, "describe", counted)
    return reads


def _request(**fields) -> bytes:
    return json.dumps({"subscribe": "va_pageview_aggregate", **fields}).encode()


def test_subscribes_share_one_catalog_read_until_it_is_old(store, catalog_reads):
    clock = _Clock()
    cache = LiveSchemas(store, ttl=30.0, clock=clock)
    subscription, schema = cache.parse(_request())
    assert schema == describe(store, "va_pageview_aggregate")[0].schema
    assert subscription.view == "va_pageview_aggregate"
    for _ in range(5):
        cache.parse(_request(where={"page_url": "/x"}))
    assert len(catalog_reads) == 1
    clock.now = 31.0
    cache.parse(_request())
    assert len(catalog_reads) == 2


def test_a_refused_request_is_checked_again_against_fresh_schemas_at_most_once_a_second(
    store, catalog_reads
):
    clock = _Clock()
    cache = LiveSchemas(store, ttl=30.0, clock=clock)
    cache.parse(_request())
    with pytest.raises(InvalidQuery) as refused:
        cache.parse(_request(columns=["nope"]))  # read a moment ago: refused from the cache
    assert refused.value.rule == "unknown-column" and len(catalog_reads) == 1
    clock.now = 2.0
    with pytest.raises(InvalidQuery):
        cache.parse(_request(columns=["nope"]))  # older: read again, still refused
    assert len(catalog_reads) == 2
    with pytest.raises(InvalidQuery, match="has no live updates"):
        cache.parse(json.dumps({"subscribe": "va_pageview_event"}).encode())
    assert len(catalog_reads) == 2
