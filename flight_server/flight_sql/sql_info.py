"""CommandGetSqlInfo: what the server tells drivers about itself and its SQL.

JDBC and ODBC tools read many of these ids (DBeaver asks for the keyword list,
Tableau for ANSI-92 entry level) and a missing one can surface as a crash in the
tool, so every id of the specification has an answer. The answers describe
flightdeck's query path: read-only SQL over `va_` views, no transactions, bulk
ingest of events only.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

__all__ = ["SQL_INFO_SCHEMA", "sql_info"]

_LIST = pa.list_(pa.string())
_MAP = pa.map_(pa.int32(), pa.list_(pa.int32()))
# The dense union's children in type-code order 0..5, as the specification lists them.
_CHILDREN = [
    pa.field("string_value", pa.string()),
    pa.field("bool_value", pa.bool_()),
    pa.field("bigint_value", pa.int64()),
    pa.field("int32_bitmask", pa.int32()),
    pa.field("string_list", _LIST),
    pa.field("int32_to_int32_list_map", _MAP),
]
_VALUE = pa.dense_union(_CHILDREN, type_codes=list(range(6)))
SQL_INFO_SCHEMA = pa.schema(
    [pa.field("info_name", pa.uint32(), nullable=False), pa.field("value", _VALUE, nullable=False)]
)


_INT32_MAX = 2**31 - 1


class _Int32(int):
    """An int32 ordinal or bitmask (a plain int is an int64 value)."""


# SqlSupportsConvert codes, for SQL_SUPPORTS_CONVERT: what CAST can turn into what.
_BIGINT, _BIT, _CHAR, _DATE, _DECIMAL, _FLOAT, _INTEGER = 0, 2, 3, 4, 5, 6, 7
_NUMERIC, _REAL, _SMALLINT, _TIMESTAMP, _TINYINT, _VARCHAR = 12, 13, 14, 16, 17, 19
_NUMBERS = [_BIGINT, _DECIMAL, _FLOAT, _INTEGER, _NUMERIC, _REAL, _SMALLINT, _TINYINT]
_CONVERSIONS = {
    **{n: [*_NUMBERS, _CHAR, _VARCHAR] for n in _NUMBERS},
    _BIT: [_BIT, _INTEGER, _BIGINT, _CHAR, _VARCHAR],
    _CHAR: [*_NUMBERS, _BIT, _CHAR, _DATE, _TIMESTAMP, _VARCHAR],
    _VARCHAR: [*_NUMBERS, _BIT, _CHAR, _DATE, _TIMESTAMP, _VARCHAR],
    _DATE: [_CHAR, _DATE, _TIMESTAMP, _VARCHAR],
    _TIMESTAMP: [_CHAR, _DATE, _TIMESTAMP, _VARCHAR],
}

# Words reserved by the stores beyond SQL:2003 (what JDBC's getSQLKeywords reports).
_KEYWORDS = [
    "ANALYSE", "ANALYZE", "ASOF", "ATTACH", "COPY", "DESCRIBE", "DETACH", "EXPLAIN",
    "EXPORT", "ILIKE", "IMPORT", "INSTALL", "LIMIT", "LOAD", "NOTNULL", "OFFSET",
    "PIVOT", "PRAGMA", "QUALIFY", "RETURNING", "SUMMARIZE", "UNPIVOT", "VACUUM",
]  # fmt: skip
_NUMERIC_FUNCTIONS = [
    "ABS", "ACOS", "ASIN", "ATAN", "ATAN2", "CEIL", "CEILING", "COS", "COT", "DEGREES",
    "EXP", "FLOOR", "LN", "LOG", "LOG10", "MOD", "PI", "POWER", "RADIANS", "RANDOM",
    "ROUND", "SIGN", "SIN", "SQRT", "TAN", "TRUNC",
]  # fmt: skip
_STRING_FUNCTIONS = [
    "ASCII", "CHR", "CONCAT", "CONCAT_WS", "LEFT", "LENGTH", "LOWER", "LPAD", "LTRIM",
    "POSITION", "REGEXP_REPLACE", "REPEAT", "REPLACE", "REVERSE", "RIGHT", "RPAD",
    "RTRIM", "SPLIT_PART", "STARTS_WITH", "STRPOS", "SUBSTR", "SUBSTRING", "TRIM", "UPPER",
]  # fmt: skip
_SYSTEM_FUNCTIONS = ["COALESCE", "GREATEST", "LEAST", "NULLIF"]
_DATETIME_FUNCTIONS = [
    "AGE", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "DATE_PART", "DATE_TRUNC",
    "EXTRACT", "MAKE_DATE", "NOW", "TO_TIMESTAMP",
]  # fmt: skip


def _answers(backend: str, version: str, statement_timeout_s: float) -> dict[int, object]:
    postgres = backend == "postgresql"
    name_limit = 63 if postgres else 0  # 0: no limit known
    return {
        0: "flightdeck",  # FLIGHT_SQL_SERVER_NAME
        1: version,  # _VERSION
        2: pa.__version__,  # _ARROW_VERSION
        3: True,  # _READ_ONLY: SQL only reads; events arrive by bulk ingest
        4: True,  # _SQL
        5: False,  # _SUBSTRAIT
        6: None,  # _SUBSTRAIT_MIN_VERSION
        7: None,  # _SUBSTRAIT_MAX_VERSION
        8: _Int32(0),  # _TRANSACTION: none, so drivers never send BeginTransaction
        9: True,  # _CANCEL (the CancelQuery action)
        10: True,  # _BULK_INGESTION (into tb_pageview_event)
        11: False,  # _INGEST_TRANSACTIONS_SUPPORTED: each ingest commits by itself
        # _STATEMENT_TIMEOUT (ms): the store cancels every query after --query-timeout.
        100: _Int32(min(round(statement_timeout_s * 1000), _INT32_MAX)),
        101: _Int32(0),  # _TRANSACTION_TIMEOUT
        500: False,  # SQL_DDL_CATALOG
        501: False,  # SQL_DDL_SCHEMA
        502: False,  # SQL_DDL_TABLE
        503: _Int32(3 if postgres else 1),  # SQL_IDENTIFIER_CASE: lowercase | insensitive
        504: '"',  # SQL_IDENTIFIER_QUOTE_CHAR
        505: _Int32(0 if postgres else 1),  # SQL_QUOTED_IDENTIFIER_CASE: sensitive | insensitive
        506: True,  # SQL_ALL_TABLES_ARE_SELECTABLE: every listed view
        507: _Int32(0 if postgres else 3),  # SQL_NULL_ORDERING: high | at end
        508: _KEYWORDS,
        509: _NUMERIC_FUNCTIONS,
        510: _STRING_FUNCTIONS,
        511: _SYSTEM_FUNCTIONS,
        512: _DATETIME_FUNCTIONS,
        513: "\\",  # SQL_SEARCH_STRING_ESCAPE
        514: "",  # SQL_EXTRA_NAME_CHARACTERS
        515: True,  # SQL_SUPPORTS_COLUMN_ALIASING
        516: True,  # SQL_NULL_PLUS_NULL_IS_NULL
        517: _CONVERSIONS,  # SQL_SUPPORTS_CONVERT
        518: True,  # SQL_SUPPORTS_TABLE_CORRELATION_NAMES
        519: False,  # SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES
        520: True,  # SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY
        521: True,  # SQL_SUPPORTS_ORDER_BY_UNRELATED
        522: _Int32(0b11),  # SQL_SUPPORTED_GROUP_BY: unrelated, beyond select
        523: True,  # SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE
        524: True,  # SQL_SUPPORTS_NON_NULLABLE_COLUMNS
        525: _Int32(0b111),  # SQL_SUPPORTED_GRAMMAR: minimum, core, extended
        # SQL_ANSI92_SUPPORTED_LEVEL: entry only, as the README promises; read-only
        # queries lack much of intermediate level (domains, ALTER, SET TRANSACTION).
        526: _Int32(0b001),
        527: False,  # SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY
        528: _Int32(2),  # SQL_OUTER_JOINS_SUPPORT_LEVEL: full
        529: "schema",  # SQL_SCHEMA_TERM
        530: "procedure",  # SQL_PROCEDURE_TERM
        531: "",  # SQL_CATALOG_TERM: empty means no catalogs
        532: False,  # SQL_CATALOG_AT_START
        533: _Int32(0),  # SQL_SCHEMAS_SUPPORTED_ACTIONS
        534: _Int32(0),  # SQL_CATALOGS_SUPPORTED_ACTIONS
        535: _Int32(0),  # SQL_SUPPORTED_POSITIONED_COMMANDS
        536: False,  # SQL_SELECT_FOR_UPDATE_SUPPORTED
        537: False,  # SQL_STORED_PROCEDURES_SUPPORTED
        538: _Int32(0b1111),  # SQL_SUPPORTED_SUBQUERIES: comparisons, exists, in, quantified
        539: True,  # SQL_CORRELATED_SUBQUERIES_SUPPORTED
        540: _Int32(0b11),  # SQL_SUPPORTED_UNIONS: UNION, UNION ALL
        541: 0,  # SQL_MAX_BINARY_LITERAL_LENGTH (0: no limit)
        542: 0,  # SQL_MAX_CHAR_LITERAL_LENGTH
        543: name_limit,  # SQL_MAX_COLUMN_NAME_LENGTH
        544: 0,  # SQL_MAX_COLUMNS_IN_GROUP_BY
        545: 0,  # SQL_MAX_COLUMNS_IN_INDEX
        546: 0,  # SQL_MAX_COLUMNS_IN_ORDER_BY
        547: 0,  # SQL_MAX_COLUMNS_IN_SELECT
        548: 1600 if postgres else 0,  # SQL_MAX_COLUMNS_IN_TABLE
        549: 0,  # SQL_MAX_CONNECTIONS
        550: name_limit,  # SQL_MAX_CURSOR_NAME_LENGTH
        551: 0,  # SQL_MAX_INDEX_LENGTH
        552: name_limit,  # SQL_DB_SCHEMA_NAME_LENGTH
        553: name_limit,  # SQL_MAX_PROCEDURE_NAME_LENGTH
        554: name_limit,  # SQL_MAX_CATALOG_NAME_LENGTH
        555: 0,  # SQL_MAX_ROW_SIZE
        556: False,  # SQL_MAX_ROW_SIZE_INCLUDES_BLOBS
        557: 0,  # SQL_MAX_STATEMENT_LENGTH
        558: 0,  # SQL_MAX_STATEMENTS
        559: name_limit,  # SQL_MAX_TABLE_NAME_LENGTH
        560: 0,  # SQL_MAX_TABLES_IN_SELECT
        561: name_limit,  # SQL_MAX_USERNAME_LENGTH
        # SQL_DEFAULT_TRANSACTION_ISOLATION: none. The specification says int32, but the
        # JDBC driver reads it as a bigint (ClassCastException on int32; 18.3.0).
        562: 0,
        563: False,  # SQL_TRANSACTIONS_SUPPORTED
        564: _Int32(0),  # SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS
        565: False,  # SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT
        566: False,  # SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED
        567: _Int32(0b10),  # SQL_SUPPORTED_RESULT_SET_TYPES: forward only
        568: _Int32(0),  # concurrencies for result set type unspecified
        569: _Int32(0b10),  # ... forward only: read only
        570: _Int32(0),  # ... scroll sensitive
        571: _Int32(0),  # ... scroll insensitive
        572: False,  # SQL_BATCH_UPDATES_SUPPORTED
        573: False,  # SQL_SAVEPOINTS_SUPPORTED
        574: False,  # SQL_NAMED_PARAMETERS_SUPPORTED
        575: False,  # SQL_LOCATORS_UPDATE_COPY
        576: False,  # SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED
    }


def sql_info(
    ids: Iterable[int], backend: str, version: str, *, statement_timeout_s: float
) -> pa.Table:
    """One row per requested id we know (all of them when `ids` is empty), in id order.

    `statement_timeout_s` is the store's query timeout (--query-timeout)."""
    answers = _answers(backend, version, statement_timeout_s)
    wanted = sorted(set(ids)) or sorted(answers)
    rows = [(i, answers[i]) for i in wanted if i in answers]
    return pa.Table.from_arrays(
        [pa.array([i for i, _ in rows], pa.uint32()), _union([v for _, v in rows])],
        schema=SQL_INFO_SCHEMA,
    )


def _code(value: object) -> int:
    if value is None or isinstance(value, str):
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, _Int32):
        return 3
    if isinstance(value, int):
        return 2
    if isinstance(value, list):
        return 4
    return 5


def _union(values: list[object]) -> pa.Array:
    codes = [_code(v) for v in values]
    children: list[list[object]] = [[] for _ in _CHILDREN]
    offsets = []
    for code, value in zip(codes, values, strict=True):
        offsets.append(len(children[code]))
        children[code].append(list(value.items()) if isinstance(value, dict) else value)
    arrays = [pa.array(items, f.type) for items, f in zip(children, _CHILDREN, strict=True)]
    return pa.UnionArray.from_dense(
        pa.array(codes, pa.int8()),
        pa.array(offsets, pa.int32()),
        arrays,
        [f.name for f in _CHILDREN],
        list(range(6)),
    )
