"""The NATS worker retries a refused commit only when the refusal says a retry helps."""

from __future__ import annotations

import json

from flightdeck.ingest import InvalidBatch, RetentionRace
from flightdeck.ingest.messages import Limits, Payload, decode
from flightdeck.ingest.nats_worker import refused


def _decoded(messages: int):
    payloads = [
        Payload(
            json.dumps(
                {"session_id": f"s{i}", "page_url": "/a", "timestamp": "2024-01-15T10:00:00Z"}
            ).encode(),
            None,
            f"nats:EVENTS:{i + 1}",
        )
        for i in range(messages)
    ]
    return decode(payloads, Limits(message_bytes=2**20, batch_bytes=2**24))


def test_a_refusal_naming_a_row_sets_its_message_aside():
    decoded = refused(_decoded(3), InvalidBatch("page_url", 1, "text", "too long"))
    assert [r.index for r in decoded.rejected] == [1]
    assert sorted(set(decoded.owners)) == [0, 2]


def test_a_refusal_naming_no_row_is_never_retried():
    # The old worker took a missing row for "retention ran meanwhile" and had the
    # messages redelivered, forever (the consumer has no delivery limit).
    decoded = refused(_decoded(2), InvalidBatch("page_url", None, "text", "batch-wide"))
    assert [r.index for r in decoded.rejected] == [0, 1]
    assert not decoded.batches and "[text] page_url: batch-wide" in decoded.rejected[0].reason


def test_only_a_retention_race_says_retry():
    race = RetentionRace(detail="a day expired")
    assert isinstance(race, InvalidBatch) and race.row is None and race.rule == "retention"
