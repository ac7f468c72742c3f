"""Positional query parameters: count them, and write them the way the store reads them.

Clients write `?` (JDBC, ODBC, ADBC) or `$1` (PostgreSQL style). DuckDB reads
both; PostgreSQL reads only `$n`, so there each `?` becomes `$1`, `$2`, … in
order. The rewrite works on tokens, so a `?` inside a string or a comment is
left alone, and the guard checks the rewritten text: what runs is what was checked.
"""

from __future__ import annotations

import itertools

import pyarrow as pa
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from .errors import InvalidQuery

__all__ = ["bind_style", "check_bound", "parameter_schema", "without_unions"]

_DIALECTS = {"duckdb": "duckdb", "postgresql": "postgres"}


def bind_style(sql: str, backend: str) -> tuple[str, int]:
    """`sql` with placeholders in the store's style, and how many parameters it takes."""
    try:
        tokens = Dialect.get_or_raise(_DIALECTS[backend]).tokenize(sql)
    except TokenError:
        return sql, 0  # the guard reports what is wrong with the text
    marks = [t for t in tokens if t.token_type == TokenType.PLACEHOLDER and t.text == "?"]
    # `$2` is two adjacent tokens: a PARAMETER `$` and the NUMBER `2`.
    numbered = [
        int(number.text)
        for dollar, number in itertools.pairwise(tokens)
        if dollar.token_type == TokenType.PARAMETER
        and number.token_type == TokenType.NUMBER
        and number.text.isdigit()
        and dollar.end + 1 == number.start
    ]
    if marks and numbered:
        raise InvalidQuery(
            "parameters", "use either ? or $1-style placeholders in one query, not both"
        )
    if numbered:
        return sql, max(numbered)
    if backend != "postgresql" or not marks:
        return sql, len(marks)
    pieces, start = [], 0
    for position, mark in enumerate(marks, start=1):
        pieces += [sql[start : mark.start], f"${position}"]
        start = mark.end + 1
    return "".join(pieces) + sql[start:], len(marks)


def parameter_schema(types: list[pa.DataType]) -> pa.Schema:
    """What a client should bind: one column per parameter, in the types the store
    infers (parameter_types.py). Where it cannot tell, the null type is Flight SQL's
    wildcard: clients bind whatever Arrow types their values have.
    """
    return pa.schema([pa.field(f"${n}", t) for n, t in enumerate(types, start=1)])


def check_bound(parameters: pa.RecordBatch | None, count: int) -> None:
    """A query runs with exactly one row of exactly `count` parameters (or none at all)."""
    given = 0 if parameters is None else parameters.num_columns
    if given != count:
        raise InvalidQuery(
            "parameters",
            f"the query has {count} parameter(s) but {given} were bound"
            + ("; bind them with the prepared statement" if given == 0 else ""),
        )
    if parameters is not None and parameters.num_rows != 1:
        raise InvalidQuery(
            "parameters",
            f"bind one row of parameters per execution; got {parameters.num_rows} rows",
        )


def without_unions(parameters: pa.RecordBatch | None) -> pa.RecordBatch | None:
    """`parameters` with each union-typed column replaced by its values' own type.

    Some clients (flightsql-dbapi) send every parameter as a dense union so that a
    column can carry any Python type; neither DuckDB nor PostgreSQL binds unions.
    A column whose rows use different union members has no one type to bind as,
    so it is refused, naming the parameter.
    """
    if parameters is None or not any(pa.types.is_union(field.type) for field in parameters.schema):
        return parameters
    columns = [
        _union_values(column, position, field.name) if pa.types.is_union(field.type) else column
        for position, (field, column) in enumerate(
            zip(parameters.schema, parameters.columns, strict=True), start=1
        )
    ]
    names = parameters.schema.names
    return pa.RecordBatch.from_arrays(columns, names=names)


def _union_values(column: pa.UnionArray, position: int, name: str) -> pa.Array:
    """The values of a union column as an array of its one member's type."""
    codes = set(column.type_codes.to_pylist())
    if len(codes) > 1:
        members = sorted(
            str(column.type.field(column.type.type_codes.index(c)).type) for c in codes
        )
        raise InvalidQuery(
            "parameter-type",
            f"parameter ${position} ({name!r}) has rows of different types "
            f"({', '.join(members)}); bind one type per parameter",
        )
    if not codes:  # no rows: check_bound reports that
        return pa.nulls(0)
    child = column.field(column.type.type_codes.index(codes.pop()))
    if column.type.mode == "dense":
        return child.take(column.offsets)
    return child
