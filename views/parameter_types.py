"""The types a query's parameters take, as the backend infers them when it prepares it.

A Flight SQL client binds its values into the prepared statement's parameter schema
(the JDBC driver can bind into nothing else), so that schema says what the backend
expects: `page_url = ?` is a string, `recorded_at >= ?` a UTC timestamp. Where the
backend cannot tell (`SELECT ?`), the type stays null: Flight SQL's wildcard.

- PostgreSQL: ADBC's `adbc_prepare` describes the statement (PQprepare and
  PQdescribePrepared); nothing runs. A parameter PostgreSQL cannot type at all
  (`? IS NULL`) fails the describe with SQLSTATE 42P18: then every type stays null.
- DuckDB: its ADBC driver reports every parameter as null, and
  `duckdb_prepared_statements()` as UNKNOWN, though DuckDB's binder knows them.
  `json_serialize_plan` serialises the bound logical plan, whose BOUND_PARAMETER
  expressions carry the type; it plans without running. When one parameter has
  no type DuckDB refuses to plan at all, and every type stays null.

Timestamps are declared in milliseconds, not in the microseconds of our result
streams: the Flight SQL JDBC driver (18.3.0, TimestampAvaticaParameterConverter)
writes a java.sql.Timestamp's epoch milliseconds into the vector whatever its unit,
so a microsecond declaration binds dates in January 1970. Values sent in a finer
unit keep it (parameter_cast.py), so no client loses precision.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import adbc_driver_manager.dbapi as dbapi
import pyarrow as pa

from .conform import conform_schema

__all__ = ["duckdb_parameter_types", "postgres_parameter_types"]

_INDETERMINATE = "42P18"  # PostgreSQL: could not determine data type of parameter

# DuckDB's logical type ids, as its plan names them, and the Arrow type a result of
# that type has on our streams (timestamps in UTC, string rather than string_view).
_DUCKDB_TYPES = {
    "BOOLEAN": pa.bool_(),
    "TINYINT": pa.int8(),
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "UTINYINT": pa.uint8(),
    "USMALLINT": pa.uint16(),
    "UINTEGER": pa.uint32(),
    "UBIGINT": pa.uint64(),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
    "BLOB": pa.binary(),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMP_S": pa.timestamp("s"),
    "TIMESTAMP_MS": pa.timestamp("ms"),
    "TIMESTAMP_NS": pa.timestamp("ns"),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "INTERVAL": pa.month_day_nano_interval(),
}


def postgres_parameter_types(cursor: dbapi.Cursor, sql: str, count: int) -> list[pa.DataType]:
    """The types PostgreSQL gives the `count` parameters of `sql` (`$n` style)."""
    try:
        described = cursor.adbc_prepare(sql)
    except dbapi.Error as exc:
        if getattr(exc, "sqlstate", None) == _INDETERMINATE:
            return [pa.null()] * count
        raise
    if described is None or len(described) != count:
        return [pa.null()] * count
    # An extension type (uuid as fixed_size_binary) would refuse the text clients send.
    typed = pa.schema([f for f in described if not _opaque(f.type)])
    declared = iter(_declared(f.type) for f in conform_schema(typed))
    return [pa.null() if _opaque(f.type) else next(declared) for f in described]


def _opaque(t: pa.DataType) -> bool:
    numeric = isinstance(t, pa.OpaqueType) and t.type_name == "numeric"
    return isinstance(t, pa.BaseExtensionType) and not numeric


def duckdb_parameter_types(cursor: dbapi.Cursor, sql: str, count: int) -> list[pa.DataType]:
    """The types DuckDB's binder gives the `count` parameters of `sql`."""
    cursor.execute("SELECT json_serialize_plan(?)", pa.record_batch([pa.array([sql])], ["sql"]))
    plan = json.loads(cursor.fetchone()[0])
    types = [pa.null()] * count
    if plan.get("error"):
        return types
    for node in _bound_parameters(plan.get("plans", [])):
        position = int(node.get("identifier", "0")) if str(node.get("identifier")).isdigit() else 0
        if 1 <= position <= count and types[position - 1] == pa.null():
            types[position - 1] = _declared(_duckdb_type(node.get("return_type") or {}))
    return types


def _declared(t: pa.DataType) -> pa.DataType:
    """The type a client is told to bind (see the module's note on timestamps)."""
    return pa.timestamp("ms", tz=t.tz) if pa.types.is_timestamp(t) else t


def _bound_parameters(tree: object) -> Iterator[dict]:
    if isinstance(tree, dict):
        if tree.get("expression_class") == "BOUND_PARAMETER":
            yield tree
        for value in tree.values():
            yield from _bound_parameters(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _bound_parameters(value)


def _duckdb_type(logical: dict) -> pa.DataType:
    name = logical.get("id")
    if name == "DECIMAL":
        info = logical.get("type_info") or {}
        width, scale = info.get("width"), info.get("scale")
        if isinstance(width, int) and isinstance(scale, int) and 0 < width <= 38:
            return pa.decimal128(width, scale)
        return pa.null()
    # HUGEINT, UUID and nested types have no Arrow type both stores agree on: any.
    return _DUCKDB_TYPES.get(name, pa.null())
