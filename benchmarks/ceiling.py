"""One canonical in-memory ceiling per read size, the same for both backends.

The ceiling used to serve whatever the section's own DoGet had just returned,
from a file written in that section: its rows, layout and the process state
around it differed by backend. Now each size gets one table, built once from
the same generator the loads use, cast to the schema DoGet announces, and cut
into messages by DoGet's own rule (flightdeck's `rebatch`: at most 65,536 rows
and about 2 MiB per message), so the ceiling and DoGet put the same number of
messages of the same size on the wire. The file is written once; every
memory-server process serving that size reads the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from flightdeck.flight_server.settings import Settings
from flightdeck.flight_server.streaming import rebatch

from . import data

__all__ = ["MESSAGE_RULE", "CeilingFiles"]

MESSAGE_ROWS = Settings.batch_rows
MESSAGE_BYTES = Settings.batch_bytes
MESSAGE_RULE = f"DoGet's: <= {MESSAGE_ROWS:,} rows and ~<= {MESSAGE_BYTES / 2**20:g} MiB a message"


class CeilingFiles:
    """`path(size, schema)`: the Arrow IPC file holding the canonical `size`-row table."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)
        self.nbytes: dict[int, int] = {}
        self._schemas: dict[int, pa.Schema] = {}

    def schema(self, size: int) -> pa.Schema | None:
        return self._schemas.get(size)

    def path(self, size: int, schema: pa.Schema) -> Path:
        path = self._root / f"ceiling-{size}.arrow"
        if not path.exists():
            self._write(path, size, schema)
        return path

    def _write(self, path: Path, size: int, schema: pa.Schema) -> None:
        # The view's columns from the rows the loads inserted (the same ids and values).
        table = data.events(size).select(schema.names).cast(schema)
        self.nbytes[size] = table.nbytes
        self._schemas[size] = schema
        batches = rebatch(table.to_batches(), MESSAGE_ROWS, MESSAGE_BYTES)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
