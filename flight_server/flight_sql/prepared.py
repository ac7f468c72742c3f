"""Prepared statement handles and the parameters bound to them.

A handle is self-contained JSON: the checked SQL, an id, the parameter types
declared when it was prepared, and once parameters are bound, the parameters
themselves (returned to the client as the updated handle of
DoPutPreparedStatementResult). So a handle works on any server sharing the
store. Clients that predate updated handles keep using the first one; for them
the bound parameters are also kept here by id, a bounded number of them.
"""

from __future__ import annotations

import base64
import collections
import json
import secrets
import threading
from dataclasses import dataclass, replace

import pyarrow as pa
from flightdeck.views import InvalidQuery

from ..descriptors import batch_from_text, batch_to_text

__all__ = ["Bindings", "Handle"]


@dataclass(frozen=True)
class Handle:
    sql: str
    id: str
    parameters: pa.RecordBatch | None = None
    # The parameter schema sent on prepare; bound values are cast to it. None: a
    # handle from before types were declared, whose values bind as sent.
    types: pa.Schema | None = None

    @classmethod
    def new(cls, sql: str, types: pa.Schema | None = None) -> Handle:
        return cls(sql, secrets.token_hex(8), types=types)

    def encode(self) -> bytes:
        body = {"sql": self.sql, "id": self.id}
        if self.types is not None:
            body["types"] = base64.b64encode(self.types.serialize().to_pybytes()).decode()
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
            types = _schema_from_text(body.get("types"), max_parameter_bytes)
            return cls(str(body["sql"]), str(body["id"]), parameters, types)
        except (ValueError, KeyError, TypeError, pa.ArrowInvalid):
            raise InvalidQuery(
                "prepared-statement",
                "not a flightdeck prepared statement handle; create one with "
                "CreatePreparedStatement",
            ) from None


def _schema_from_text(text: object, max_bytes: int) -> pa.Schema | None:
    if text is None:
        return None
    if not isinstance(text, str) or len(text) > max_bytes:
        raise ValueError("parameter types")
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text, validate=True)))


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
        return replace(handle, parameters=parameters)

    def resolve(self, handle: Handle) -> Handle:
        """The handle with its parameters: its own, else the ones bound to its id."""
        if handle.parameters is not None:
            return handle
        with self._lock:
            return replace(handle, parameters=self._bound.get(handle.id))

    def close(self, handle: Handle) -> None:
        with self._lock:
            self._bound.pop(handle.id, None)
