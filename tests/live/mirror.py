"""A client-side table kept from live messages, as a client of the protocol keeps it."""

from __future__ import annotations

import json
import time

KINDS = ("snapshot", "update", "upsert")


class Mirror:
    """Rows by key, applied from (metadata, rows) messages; `kinds` counts each kind seen."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.rows: dict[tuple, dict] = {}
        self.kinds: dict[str, int] = {}
        self.cursor: int | None = None
        self.lifetime: str | None = None

    def apply(self, meta: dict, rows: list[dict]) -> None:
        self.kinds[meta["type"]] = self.kinds.get(meta["type"], 0) + 1
        self.cursor = meta.get("cursor", self.cursor)
        self.lifetime = meta.get("lifetime", self.lifetime)
        for row in rows:
            key = tuple(row[k] for k in self.keys)
            if meta["type"] in KINDS:
                self.rows[key] = row
            elif meta["type"] == "remove":
                assert key in self.rows, f"remove of a row never sent: {key}"
                del self.rows[key]

    def read(self, reader, until, timeout: float = 20.0) -> None:
        """Apply messages until `until(self)` holds."""
        deadline = time.monotonic() + timeout
        while not until(self):
            assert time.monotonic() < deadline, f"gave up with {self.kinds}: {self.rows}"
            chunk = reader.read_chunk()
            meta = json.loads(chunk.app_metadata.to_pybytes())
            self.apply(meta, chunk.data.to_pylist() if chunk.data is not None else [])

    def table(self, columns: list[str]) -> list[tuple]:
        return sorted(tuple(r[c] for c in columns) for r in self.rows.values())
