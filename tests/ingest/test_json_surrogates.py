"""Escaped lone surrogates in `properties` are refused however they are written.

Only values with a surrogate escape get the re-encoding check (events.py), so
the pattern that picks them must miss none: upper case, in a key, deep inside.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from flightdeck.ingest.errors import InvalidBatch
from flightdeck.ingest.events import normalise

_REFUSED = [
    '{"a": "\\ud800"}',
    '{"a": "\\uDFFF"}',
    '{"a": "\\uDbFf tail"}',
    '{"\\udc00": 1}',
    '{"a": [1, {"b": "x\\uD9AA"}]}',
    '{"a": "\\ud83d"}',  # the first half of a pair, alone
]
_TAKEN = [
    '{"a": "\\ud83d\\ude00"}',  # a whole pair: one character
    '{"a": "\\\\ud800"}',  # an escaped backslash, then the letters
    '{"a": "\\u00e9\\ufffd"}',
]


def _batch(properties: list[str]) -> pa.RecordBatch:
    n = len(properties)
    return pa.RecordBatch.from_pydict(
        {
            "session_id": ["s"] * n,
            "page_url": ["/a"] * n,
            "recorded_at": pa.array([dt.datetime(2024, 1, 15, tzinfo=dt.UTC)] * n),
            "properties": properties,
        }
    )


@pytest.mark.parametrize("value", _REFUSED)
def test_an_escaped_lone_surrogate_is_refused_naming_its_row(value):
    with pytest.raises(InvalidBatch) as refused:
        normalise(_batch([*_TAKEN, value]), first_row=10)
    assert (refused.value.column, refused.value.row, refused.value.rule) == (
        "properties",
        10 + len(_TAKEN),
        "text",
    )


def test_surrogate_pairs_and_other_escapes_are_taken():
    assert normalise(_batch(_TAKEN)).num_rows == len(_TAKEN)
