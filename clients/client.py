"""The Python client: a thin, typed layer over pyarrow.flight for flightdeck's contracts."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.flight as flight

__all__ = ["Client", "LiveMessage", "LiveSubscription"]


class LiveMessage(NamedTuple):
    """One message of a live subscription; unpacks as `(kind, table, cursor)`.

    kind: snapshot, snapshot_end, update, heartbeat, resync or error. `table`
    holds rows for snapshot and update, else None. Keep the newest `cursor`
    to resume from it after a disconnect.
    """

    kind: str
    table: pa.Table | None
    cursor: int
    detail: dict[str, Any]


class LiveSubscription:
    """An iterator of LiveMessage; `close()` (or leaving a `with` block) ends the call."""

    def __init__(self, writer: flight.FlightStreamWriter, reader) -> None:
        self._writer = writer
        self._reader = reader
        self.cursor: int | None = None

    def __iter__(self) -> Iterator[LiveMessage]:
        while True:
            try:
                chunk = self._reader.read_chunk()
            except StopIteration:
                return
            meta = json.loads(chunk.app_metadata.to_pybytes()) if chunk.app_metadata else {}
            table = pa.Table.from_batches([chunk.data]) if chunk.data is not None else None
            self.cursor = meta.get("cursor", self.cursor)
            yield LiveMessage(meta.get("type", "update"), table, self.cursor, meta)
            if meta.get("type") == "error":
                return

    def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(flight.FlightError, pa.ArrowException):
            self._writer.close()

    def __enter__(self) -> LiveSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    def __init__(self, location: str = "grpc://127.0.0.1:8815") -> None:
        self._flight = flight.connect(location)

    def subscribe(
        self,
        view: str,
        *,
        where: dict[str, Any] | None = None,
        columns: list[str] | None = None,
        changes_on: list[str] | None = None,
        snapshot: bool = True,
        cursor: int | None = None,
    ) -> LiveSubscription:
        """Follow `view` live: a snapshot (unless `snapshot=False`), then updates.

        `where` maps key columns to a value, `{"in": [...]}` or a range such as
        `{">=": "2024-01-01"}`; pass the last `cursor` you saw to resume.
        """
        request = {"subscribe": view, "snapshot": snapshot, "cursor": cursor}
        for name, value in (("where", where), ("columns", columns), ("changes_on", changes_on)):
            if value is not None:
                request[name] = value
        descriptor = flight.FlightDescriptor.for_command(json.dumps(request).encode())
        writer, reader = self._flight.do_exchange(descriptor)
        return LiveSubscription(writer, reader)

    def close(self) -> None:
        self._flight.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
