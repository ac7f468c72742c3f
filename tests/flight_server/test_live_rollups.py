"""Every declared rollup is live: a DoExchange subscription to a rollup view gets
its snapshot, then the rows each commit changes (docs/rollups.md)."""

from __future__ import annotations

import contextlib

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.ingest.rollup_install import install
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups

from tests.flight_server.test_live import _leave, _messages, _put, _server, _subscribe


@pytest.fixture
def live(store, nats_server, tmp_path):
    install(store, load_rollups([BUILTIN_DIR]))
    with _server(store, nats_server.url, tmp_path) as where:
        client = flight.connect(where)
        yield client
        client.close()


def test_a_rollup_view_streams_its_changed_rows(live):
    _put(live, ["/a", "/b"], session="s")
    writer, reader = _subscribe(live, subscribe="va_site_daily")
    first = _messages(reader, lambda meta, out: meta["type"] == "snapshot_end")
    (row,) = [r for meta, rows in first if meta["type"] == "snapshot" for r in rows]
    assert (row["views"], row["visits"]) == (2, 2)
    _put(live, ["/a", "/c", "/d"], session="t", minute=5)
    updates = _messages(
        reader, lambda meta, out: meta["type"] == "update" and out[-1][1][0]["views"] == 5
    )
    latest = updates[-1][1][0]
    assert (str(latest["date"]), latest["views"], latest["visits"]) == ("2024-01-15", 5, 5)
    _leave(writer, reader)


def test_a_subscription_to_an_unknown_view_lists_the_rollups(live):
    writer, reader = _subscribe(live, subscribe="va_nope")
    with pytest.raises(pa.ArrowInvalid, match="va_site_daily"):  # INVALID_ARGUMENT
        reader.read_chunk()
    with contextlib.suppress(pa.ArrowInvalid):  # the call already ended with the refusal
        writer.close()
