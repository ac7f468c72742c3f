"""Prepared statement handles and the parameters bound to them.

A handle is self-contained JSON: the checked SQL, an id, and once parameters are
bound, the parameters themselves (returned to the client as the updated handle
of DoPutPreparedStatementResult). So a handle works on any server sharing the
store. Clients that predate updated handles keep using the first one; for them
the bound parameters are also kept here by id, a bounded number of them.
"""

from __future__ import annotations

import collections
import json
import secrets
import threading
from dataclasses import dataclass

import pyarrow as pa
from flightdeck.views import InvalidQuery

from ..descriptors import batch_from_text, batch_to_text

__all__ = ["Bindings", "Handle"]


@dataclass(frozen=True)
class Handle:
    sql: str
    id: str
    parameters: pa.RecordBatch | None = None

    @classmethod
    def new(cls, sql: str) -> Handle:
        return cls(sql, secrets.token_hex(8))

    def encode(self) -> bytes:
        body = {"sql": self.sql, "id": self.id}
        if self.parameters is not None:
            body["params"] = batch_to_text(self.parameters)
        return json.dumps(body).encode()

    @classmethod
    def decode(cls, raw: bytes, max_parameter_bytes: int) -> Handle:
        """The client hands the handle back, so its parameters are bounded like a ticket's."""
        try:
            body = json.loads(raw)
            params = body.get("params")
            parameters = batch_from_text(params, max_parameter_bytes) if params else None
            return cls(str(body["sql"]), str(body["id"]), parameters)
        except (ValueError, KeyError, TypeError, pa.ArrowInvalid):
            raise InvalidQuery(
                "prepared-statement",
                "not a flightdeck prepared statement handle; create one with "
                "CreatePreparedStatement",
            ) from None


class Bindings:
    """Parameters bound by id, for clients that keep their first handle."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._bound: collections.OrderedDict[str, pa.RecordBatch] = collections.OrderedDict()
        self._lock = threading.Lock()

    def bind(self, handle: Handle, parameters: pa.RecordBatch) -> Handle:
        with self._lock:
            self._bound[handle.id] = parameters
            self._bound.move_to_end(handle.id)
            while len(self._bound) > self._limit:
                self._bound.popitem(last=False)
        return Handle(handle.sql, handle.id, parameters)

    def resolve(self, handle: Handle) -> Handle:
        """The handle with its parameters: its own, else the ones bound to its id."""
        if handle.parameters is not None:
            return handle
        with self._lock:
            return Handle(handle.sql, handle.id, self._bound.get(handle.id))

    def close(self, handle: Handle) -> None:
        with self._lock:
            self._bound.pop(handle.id, None)
