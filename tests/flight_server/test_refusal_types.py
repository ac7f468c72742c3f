"""A refused request says what was refused: an action body or a put target is no batch."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as flight
import pytest


def test_a_bad_action_body_is_an_action_refusal(client):
    with pytest.raises(pa.ArrowInvalid) as refused:
        list(client.do_action(flight.Action("reaggregate", b'{"dates": "x"}')))
    assert "action refused [action-body]" in str(refused.value)
    assert "batch" not in str(refused.value)


def test_a_bad_put_target_is_a_put_refusal(client):
    batch = pa.record_batch({"page_url": ["/a"]})
    writer, _ = client.do_put(flight.FlightDescriptor.for_path("nowhere"), batch.schema)
    with pytest.raises(pa.ArrowInvalid) as refused:
        writer.write_batch(batch)
        writer.close()
    assert "put refused [put-path]" in str(refused.value)
    assert "batch refused" not in str(refused.value)
