"""Live-update signatures: what they cover, and the key every process on a store shares."""

from __future__ import annotations

import pytest
from flightdeck.ingest.publisher import Update
from flightdeck.ingest.streams import AGGREGATE_SUBJECT
from flightdeck.ingest.update_signature import (
    KIND_HEADER,
    SIGNATURE_HEADER,
    SIGNED_HEADERS,
    signing_key,
    verify,
)

KEY = bytes(range(32))
UPDATE = Update("va_pageview_aggregate", 42, 1, 2, b"arrow ipc bytes")


def _signed() -> dict[str, str]:
    return UPDATE.signed_headers(KEY)


def test_a_signed_update_verifies():
    assert verify(KEY, AGGREGATE_SUBJECT, _signed(), UPDATE.payload)


@pytest.mark.parametrize("header", SIGNED_HEADERS)
def test_changing_any_signed_header_breaks_the_signature(header):
    headers = {**_signed(), header: "something else"}
    assert not verify(KEY, AGGREGATE_SUBJECT, headers, UPDATE.payload)
    dropped = {k: v for k, v in _signed().items() if k != header}
    assert not verify(KEY, AGGREGATE_SUBJECT, dropped, UPDATE.payload)


def test_payload_subject_and_key_are_covered():
    assert not verify(KEY, AGGREGATE_SUBJECT, _signed(), UPDATE.payload + b"x")
    assert not verify(KEY, "analytics.other", _signed(), UPDATE.payload)
    assert not verify(b"another key", AGGREGATE_SUBJECT, _signed(), UPDATE.payload)


@pytest.mark.parametrize("signature", [None, "", "v1=", "v1=" + "0" * 64, "garbage"])
def test_missing_or_malformed_signatures_are_refused(signature):
    headers = {k: v for k, v in _signed().items() if k != SIGNATURE_HEADER}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    assert not verify(KEY, AGGREGATE_SUBJECT, headers, UPDATE.payload)
    assert not verify(KEY, AGGREGATE_SUBJECT, None, UPDATE.payload)


def test_the_store_keeps_one_key_for_every_process(store):
    first = signing_key(store)
    assert len(first) == 32
    assert signing_key(store) == first  # asked again (another process): the same key


def test_a_remove_says_so_in_what_is_signed():
    removal = Update("va_pageview_aggregate", 42, 1, 1, b"keys", kind="remove")
    headers = removal.signed_headers(KEY)
    assert headers[KIND_HEADER] == "remove" and verify(KEY, AGGREGATE_SUBJECT, headers, b"keys")
    stripped = {k: v for k, v in headers.items() if k != KIND_HEADER}  # a remove read as rows
    assert not verify(KEY, AGGREGATE_SUBJECT, stripped, b"keys")
    added = {**_signed(), KIND_HEADER: "remove"}  # rows read as a remove
    assert not verify(KEY, AGGREGATE_SUBJECT, added, UPDATE.payload)
    assert KIND_HEADER not in _signed()  # an update's headers are as before removes
