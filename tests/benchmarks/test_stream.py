"""The realistic benchmark stream has the properties the ingest benchmark relies on."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.stream import EventStream, StreamShape, json_messages

SMALL = StreamShape(block_sessions=2_000)


def _chunks(sizes: list[int], shape: StreamShape = SMALL) -> list:
    stream = EventStream(5, shape)
    return [stream.take(n) for n in sizes]


def _first_sends() -> pa.Table:
    return pa.concat_tables(c.first_sends() for c in _chunks([20_000]))


def test_the_same_seed_gives_the_same_events_whatever_the_chunk_sizes() -> None:
    a = pa.concat_tables(c.events for c in _chunks([3_000, 7_000, 10_000]))
    b = _chunks([20_000])[0].events
    assert a.equals(b)


def test_events_arrive_in_time_order_but_for_the_late_ones() -> None:
    strict = dataclasses.replace(SMALL, late=0.0, resent=0.0)
    recorded = _chunks([10_000], strict)[0].events["recorded_at"].to_numpy().astype(np.int64)
    assert (np.diff(recorded) >= 0).all()
    recorded = _first_sends()["recorded_at"].to_numpy().astype(np.int64)
    behind = recorded < np.maximum.accumulate(np.concatenate(([recorded[0]], recorded[:-1])))
    assert 0.001 < behind.mean() < 0.02  # the late fraction, 0.5 %


def test_sessions_straddle_chunk_boundaries() -> None:
    first, second = _chunks([5_000, 5_000])
    shared = set(first.events["session_id"].to_pylist()) & set(
        second.events["session_id"].to_pylist()
    )
    assert len(shared) > 100


def test_sessions_have_1_to_12_views() -> None:
    counts = _first_sends()["session_id"].value_counts().field("counts").to_numpy()
    assert counts.min() >= 1 and counts.max() <= 12
    assert (counts > 1).mean() > 0.3


def test_a_small_fraction_is_resent_always_after_its_first_send() -> None:
    chunks = _chunks([8_000, 8_000])
    seen: set[str] = set()
    resent = 0
    for chunk in chunks:
        for event_id, again in zip(
            chunk.events["event_id"].to_pylist(), chunk.resent.to_pylist(), strict=True
        ):
            assert (event_id in seen) == again
            seen.add(event_id)
            resent += again
    assert 0.005 < resent / 16_000 < 0.02


def test_pages_are_zipf_popular_among_thousands() -> None:
    counts = np.sort(_first_sends()["page_url"].value_counts().field("counts").to_numpy())[::-1]
    assert len(counts) > 1_000
    assert counts[0] / counts.sum() > 0.1
    assert counts[:30].sum() / counts.sum() > 0.4


def test_referrers_agents_users_and_properties_vary() -> None:
    events = _first_sends()
    assert pc.count_distinct(events["properties"]).as_py() > 1_000
    assert pc.count_distinct(events["user_agent"]).as_py() > 10
    assert 0.2 < events["user_id"].null_count / len(events) < 0.9
    keys = [set(json.loads(p)) for p in events["properties"].drop_null().to_pylist()]
    assert any("utm_source" in k for k in keys) and any("ab" not in k for k in keys)
    referrers = events["referrer"].drop_null().to_pylist()
    assert any(r.startswith("https://www.example.com/") for r in referrers)  # internal
    assert any("google" in r for r in referrers)
    assert 0.05 < events["referrer"].null_count / len(events) < 0.5  # direct


def test_json_messages_carry_every_field() -> None:
    events = _chunks([50])[0].events
    message = json.loads(json_messages(events)[0])
    assert message["event_id"] == events["event_id"][0].as_py()
    assert message["recorded_at"].endswith("Z")
