"""Prepared statement handles carry the declared parameter types; a handle from before
types were declared still decodes (its values bind as sent); a mangled one is refused."""

from __future__ import annotations

import base64
import json

import pyarrow as pa
import pytest
from flightdeck.flight_server.flight_sql.prepared import Handle
from flightdeck.views import InvalidQuery

TYPES = pa.schema([("$1", pa.string()), ("$2", pa.timestamp("ms", tz="UTC"))])


def test_a_handle_keeps_its_declared_types():
    handle = Handle.new("SELECT 1 WHERE ? = ?", TYPES)
    decoded = Handle.decode(handle.encode(), 1 << 20)
    assert decoded.types.equals(TYPES) and decoded.sql == handle.sql


def test_a_handle_without_types_decodes_with_none():
    raw = json.dumps({"sql": "SELECT ?", "id": "old"}).encode()
    assert Handle.decode(raw, 1 << 20).types is None


@pytest.mark.parametrize(
    "types", ["not base64!", base64.b64encode(b"not a schema").decode(), 7, "A" * 4096]
)
def test_mangled_or_oversized_types_are_refused(types):
    raw = json.dumps({"sql": "SELECT ?", "id": "x", "types": types}).encode()
    with pytest.raises(InvalidQuery, match=r"\[prepared-statement\]"):
        Handle.decode(raw, 1024)
