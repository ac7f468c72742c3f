"""Catalog metadata commands: schemas, tables, table types, keys and type info.

Each result has the exact schema the Flight SQL specification gives, field for
field and nullability included: drivers read these columns by position and some
check the schema. Only the `va_` views are visible. There are no catalogs (the
catalog term is empty), so tools qualify names with the schema alone, which is
the one qualifier the SQL guard accepts.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from flightdeck.views import ViewInfo

from .like import like

__all__ = [
    "CATALOGS_SCHEMA",
    "DB_SCHEMAS_SCHEMA",
    "KEYS_SCHEMA",
    "PRIMARY_KEYS_SCHEMA",
    "TABLE_TYPES_SCHEMA",
    "XDBC_TYPE_INFO_SCHEMA",
    "catalogs",
    "db_schemas",
    "empty",
    "table_types",
    "tables",
    "tables_schema",
    "xdbc_type_info",
]

TABLE_TYPE = "VIEW"


def _utf8(name: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, pa.string(), nullable=nullable)


CATALOGS_SCHEMA = pa.schema([_utf8("catalog_name", False)])
DB_SCHEMAS_SCHEMA = pa.schema([_utf8("catalog_name"), _utf8("db_schema_name", False)])
TABLE_TYPES_SCHEMA = pa.schema([_utf8("table_type", False)])
PRIMARY_KEYS_SCHEMA = pa.schema(
    [
        _utf8("catalog_name"),
        _utf8("db_schema_name"),
        _utf8("table_name", False),
        _utf8("column_name", False),
        _utf8("key_name"),
        pa.field("key_sequence", pa.int32(), nullable=False),
    ]
)
# Exported keys, imported keys and cross references share one shape.
KEYS_SCHEMA = pa.schema(
    [
        _utf8("pk_catalog_name"),
        _utf8("pk_db_schema_name"),
        _utf8("pk_table_name", False),
        _utf8("pk_column_name", False),
        _utf8("fk_catalog_name"),
        _utf8("fk_db_schema_name"),
        _utf8("fk_table_name", False),
        _utf8("fk_column_name", False),
        pa.field("key_sequence", pa.int32(), nullable=False),
        _utf8("fk_key_name"),
        _utf8("pk_key_name"),
        pa.field("update_rule", pa.uint8(), nullable=False),
        pa.field("delete_rule", pa.uint8(), nullable=False),
    ]
)
XDBC_TYPE_INFO_SCHEMA = pa.schema(
    [
        _utf8("type_name", False),
        pa.field("data_type", pa.int32(), nullable=False),
        pa.field("column_size", pa.int32()),
        _utf8("literal_prefix"),
        _utf8("literal_suffix"),
        pa.field("create_params", pa.list_(pa.field("item", pa.string(), nullable=False))),
        pa.field("nullable", pa.int32(), nullable=False),
        pa.field("case_sensitive", pa.bool_(), nullable=False),
        pa.field("searchable", pa.int32(), nullable=False),
        pa.field("unsigned_attribute", pa.bool_()),
        pa.field("fixed_prec_scale", pa.bool_(), nullable=False),
        pa.field("auto_increment", pa.bool_()),
        _utf8("local_type_name"),
        pa.field("minimum_scale", pa.int32()),
        pa.field("maximum_scale", pa.int32()),
        pa.field("sql_data_type", pa.int32(), nullable=False),
        pa.field("datetime_subcode", pa.int32()),
        pa.field("num_prec_radix", pa.int32()),
        pa.field("interval_precision", pa.int32()),
    ]
)


def tables_schema(include_schema: bool) -> pa.Schema:
    fields = [
        _utf8("catalog_name"),
        _utf8("db_schema_name"),
        _utf8("table_name", False),
        _utf8("table_type", False),
    ]
    if include_schema:
        fields.append(pa.field("table_schema", pa.binary(), nullable=False))
    return pa.schema(fields)


def catalogs() -> pa.Table:
    return CATALOGS_SCHEMA.empty_table()


def _in_catalog(catalog: str | None) -> bool:
    # No catalogs: a filter on the empty catalog ("those without one") matches.
    return catalog is None or catalog == ""


def db_schemas(schema_name: str, catalog: str | None, pattern: str | None) -> pa.Table:
    rows = [schema_name] if _in_catalog(catalog) and like(pattern, schema_name) else []
    return pa.Table.from_arrays(
        [pa.nulls(len(rows), pa.string()), pa.array(rows, pa.string())], schema=DB_SCHEMAS_SCHEMA
    )


def tables(
    views: Iterable[ViewInfo],
    schema_name: str,
    *,
    catalog: str | None,
    schema_pattern: str | None,
    name_pattern: str | None,
    types: Iterable[str],
    include_schema: bool,
) -> pa.Table:
    wanted_types = {t.upper() for t in types}
    if not _in_catalog(catalog) or not like(schema_pattern, schema_name):
        found: list[ViewInfo] = []
    elif wanted_types and TABLE_TYPE not in wanted_types:
        found = []
    else:
        found = sorted((v for v in views if like(name_pattern, v.name)), key=lambda v: v.name)
    columns = [
        pa.nulls(len(found), pa.string()),
        pa.array([schema_name] * len(found), pa.string()),
        pa.array([v.name for v in found], pa.string()),
        pa.array([TABLE_TYPE] * len(found), pa.string()),
    ]
    if include_schema:
        serialised = [_annotated(v, schema_name).serialize().to_pybytes() for v in found]
        columns.append(pa.array(serialised, pa.binary()))
    return pa.Table.from_arrays(columns, schema=tables_schema(include_schema))


def _annotated(view: ViewInfo, schema_name: str) -> pa.Schema:
    """The view's schema with the column metadata keys Flight SQL defines."""
    fields = [
        f.with_metadata(
            {
                "ARROW:FLIGHT:SQL:DB_SCHEMA_NAME": schema_name,
                "ARROW:FLIGHT:SQL:TABLE_NAME": view.name,
                "ARROW:FLIGHT:SQL:TYPE_NAME": _type_name(f.type),
                "ARROW:FLIGHT:SQL:IS_READ_ONLY": "1",
                "ARROW:FLIGHT:SQL:IS_SEARCHABLE": "1",
                "ARROW:FLIGHT:SQL:IS_AUTO_INCREMENT": "0",
                "ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE": "1" if pa.types.is_string(f.type) else "0",
            }
        )
        for f in view.schema
    ]
    return pa.schema(fields)


def table_types() -> pa.Table:
    return pa.Table.from_arrays([pa.array([TABLE_TYPE])], schema=TABLE_TYPES_SCHEMA)


def empty(schema: pa.Schema) -> pa.Table:
    """Primary, exported and imported keys: views have none, but the shape is exact."""
    return schema.empty_table()


# (type_name, XdbcDataType, column_size, literal prefix/suffix, case sensitive,
#  fixed precision and scale, radix): the SQL types our views' columns map to.
_TYPES = [
    ("BIGINT", -5, 19, None, False, True, 10),
    ("BOOLEAN", 16, 1, None, False, True, None),
    ("DATE", 91, 10, "'", False, False, None),
    ("DECIMAL", 3, 38, None, False, False, 10),
    ("DOUBLE", 8, 53, None, False, False, 2),
    ("INTEGER", 4, 10, None, False, True, 10),
    ("SMALLINT", 5, 5, None, False, True, 10),
    ("TIMESTAMP WITH TIME ZONE", 93, 32, "'", False, False, None),
    ("VARCHAR", 12, None, "'", True, False, None),
]


def xdbc_type_info(data_type: int | None) -> pa.Table:
    rows = sorted(
        (t for t in _TYPES if data_type is None or t[1] == data_type), key=lambda t: (t[1], t[0])
    )
    n = len(rows)
    is_datetime = [t[1] in (91, 93) for t in rows]
    columns = {
        "type_name": [t[0] for t in rows],
        "data_type": [t[1] for t in rows],
        "column_size": [t[2] for t in rows],
        "literal_prefix": [t[3] for t in rows],
        "literal_suffix": [t[3] for t in rows],
        "create_params": [["precision", "scale"] if t[0] == "DECIMAL" else None for t in rows],
        "nullable": [1] * n,  # NULLABILITY_NULLABLE
        "case_sensitive": [t[4] for t in rows],
        "searchable": [3] * n,  # SEARCHABLE_FULL
        "unsigned_attribute": [False if t[6] else None for t in rows],
        "fixed_prec_scale": [t[5] for t in rows],
        "auto_increment": [False if t[6] else None for t in rows],
        "local_type_name": [t[0] for t in rows],
        "minimum_scale": [0 if t[0] == "DECIMAL" else None for t in rows],
        "maximum_scale": [38 if t[0] == "DECIMAL" else None for t in rows],
        # Datetime types report the generic XDBC_DATETIME (9) with a subcode.
        "sql_data_type": [9 if d else t[1] for t, d in zip(rows, is_datetime, strict=True)],
        "datetime_subcode": [
            (1 if t[1] == 91 else 5) if d else None for t, d in zip(rows, is_datetime, strict=True)
        ],
        "num_prec_radix": [t[6] for t in rows],
        "interval_precision": [None] * n,
    }
    return pa.Table.from_pydict(columns, schema=XDBC_TYPE_INFO_SCHEMA)


def _type_name(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "VARCHAR"
    if pa.types.is_int64(arrow_type):
        return "BIGINT"
    if pa.types.is_int32(arrow_type):
        return "INTEGER"
    if pa.types.is_int16(arrow_type):
        return "SMALLINT"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    if pa.types.is_decimal(arrow_type):
        return "DECIMAL"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP WITH TIME ZONE" if arrow_type.tz else "TIMESTAMP"
    return str(arrow_type).upper()
