"""Bound parameters made the types the prepared statement declared.

Clients bind what they have: the JDBC driver binds exactly the declared types, but
ADBC Python binds an int as int64 and a date written as text as a string. A value
whose type differs is cast to the declared type when it converts (so PostgreSQL,
which types a parameter by what is bound, compares a date with a date and not
with text), and refused naming the parameter and the type expected when it does not.
"""

from __future__ import annotations

import pyarrow as pa

from .errors import InvalidQuery

__all__ = ["RULE", "cast_parameters"]

RULE = "parameter-type"


def cast_parameters(parameters: pa.RecordBatch, declared: pa.Schema) -> pa.RecordBatch:
    """`parameters` in the `declared` types where those are known; InvalidQuery for a
    value that does not convert. Columns are matched by position, as they bind."""
    if len(declared) != parameters.num_columns:
        return parameters  # check_bound names the mismatch
    columns = [
        _cast(column, target.type, position, name)
        for position, (column, target, name) in enumerate(
            zip(parameters.columns, declared, parameters.schema.names, strict=True), start=1
        )
    ]
    return pa.RecordBatch.from_arrays(columns, names=parameters.schema.names)


def _cast(column: pa.Array, declared: pa.DataType, position: int, name: str) -> pa.Array:
    sent = column.type
    if _left_as_sent(sent, declared):
        return column
    if _numeric(sent) != _numeric(declared) and (_temporal(sent) or _temporal(declared)):
        # Arrow reads a number as a time since 1970: a silent wrong date, not a conversion.
        raise _refused(column, declared, position, name)
    target = declared
    if pa.types.is_timestamp(declared):
        # Declared in milliseconds for JDBC's sake: a finer unit sent keeps its digits.
        target = pa.timestamp(sent.unit if pa.types.is_timestamp(sent) else "us", declared.tz)
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    if pa.types.is_string(sent) and pa.types.is_timestamp(target) and target.tz is not None:
        # Text without a zone offset ("2024-01-15 10:00"): UTC, the server's zone.
        try:
            return column.cast(pa.timestamp(target.unit)).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    raise _refused(column, declared, position, name)


def _left_as_sent(sent: pa.DataType, target: pa.DataType) -> bool:
    """Null declared means any type; a union is unwrapped into its member later.
    PostgreSQL declares text for a parameter it has no context for (`SELECT ?`), so a
    declared string says little: other values go as sent and the backend converts."""
    return (
        sent == target
        or pa.types.is_null(target)
        or pa.types.is_union(sent)
        or (pa.types.is_string(target) and not pa.types.is_string(sent))
    )


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _temporal(t: pa.DataType) -> bool:
    return pa.types.is_temporal(t) or pa.types.is_interval(t)


def _refused(column: pa.Array, target: pa.DataType, position: int, name: str) -> InvalidQuery:
    value = column[0].as_py() if len(column) else None
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return InvalidQuery(
        RULE,
        f"parameter ${position} ({name!r}) is {column.type} {shown}, which does not convert "
        f"to {target}, the type the query expects there",
    )
