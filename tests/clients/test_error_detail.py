"""The error detail codec: what the server encodes, the client decodes unchanged."""

from __future__ import annotations

import pytest
from flightdeck.error_detail import ErrorDetail, decode, encode
from hypothesis import given
from hypothesis import strategies as st

_text = st.none() | st.text()
_details = st.builds(
    ErrorDetail, rule=_text, column=_text, row=st.none() | st.integers(), view=_text
)


@given(_details)
def test_round_trip(detail):
    assert decode(encode(detail)) == detail


def test_only_named_fields_are_sent():
    assert encode(ErrorDetail(rule="not-null", row=0)) == b'{"rule":"not-null","row":0}'
    assert not ErrorDetail() and ErrorDetail(row=0)


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[1]", b'{"row": "3", "rule": 7}', b'{"row": true}', b"\xff"],
)
def test_a_broken_detail_names_nothing(data):
    assert decode(data) == ErrorDetail()


def test_unknown_fields_are_ignored():
    assert decode(b'{"rule": "r", "hint": "x"}') == ErrorDetail(rule="r")
