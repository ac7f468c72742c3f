"""What a subscription's messages carry: never an empty update (a table's empty chunks,
which joins and filters leave, are not messages)."""

from __future__ import annotations

import json

import pyarrow as pa
from flightdeck.flight_server.live.exchange import _Sender
from flightdeck.flight_server.live.request import LIVE, Subscription


class _Recorded:
    """A Flight writer's stand-in that keeps what it was given."""

    def __init__(self) -> None:
        self.messages: list[tuple[dict, int]] = []

    def write_metadata(self, metadata: pa.Buffer) -> None:
        self.messages.append((json.loads(metadata.to_pybytes()), 0))

    def write_with_metadata(self, batch: pa.RecordBatch, metadata: pa.Buffer) -> None:
        self.messages.append((json.loads(metadata.to_pybytes()), batch.num_rows))


def _rows(*chunks: list[str]) -> pa.Table:
    schema = pa.schema([("page_url", pa.string()), ("version", pa.int64()), (LIVE, pa.bool_())])
    batches = [
        pa.record_batch([pages, [1] * len(pages), [True] * len(pages)], schema=schema)
        for pages in chunks
    ]
    return pa.Table.from_batches(batches, schema)


def test_an_update_whose_table_starts_with_an_empty_chunk_sends_only_rows():
    subscription = Subscription(
        view="va_pageview_aggregate",
        keys=("page_url",),
        where=(),
        columns=("page_url", "version"),
        changes_on=(),
        snapshot=False,
        cursor=None,
    )
    writer = _Recorded()
    _Sender(writer, batch_rows=1000, lifetime="l").changes(subscription, 7, _rows([], ["/x"]))
    assert [(meta["type"], rows) for meta, rows in writer.messages] == [("update", 1)]
