"""DuckDB's own view of a query, checked before it runs: the wall behind the guard.

The guard reads a query with sqlglot, and DuckDB may read the same text otherwise
(a recursive CTE's anchor bound to the real table was one such case). So before a
client's query runs, the store asks DuckDB itself, on the query's own connection:

- its parse (`json_serialize_sql`): exactly one SELECT; every relation it names is
  a va_ view or a WITH query; no WITH query takes the name of any other relation
  in DuckDB's catalog; table functions only generate rows; no function is one the
  guard forbids (the guard's list, not a copy);
- its physical plan (`EXPLAIN`, with the query's parameters): every table it scans
  is one the named va_ views scan themselves, and every table function one they or
  the generating functions use.

Anything else is refused with InvalidQuery, rule `engine-check`, naming what DuckDB
would have read. DuckDB's own errors (a syntax error, a missing column) stay
BackendErrors with DuckDB's words, as they would be had the query run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import adbc_driver_manager.dbapi as dbapi
import pyarrow as pa

from .errors import BackendError, InvalidQuery
from .guard import TABLE_FUNCTIONS, is_forbidden_function

__all__ = ["RULE", "EngineCheck"]

RULE = "engine-check"

# Kinds of FROM items in DuckDB's parse that name nothing by themselves (their
# parts are walked). SHOW_REF (DESCRIBE, SHOW, SUMMARIZE) reads the catalog while
# binding, where no plan shows it; it and any kind not listed here are refused.
_PLAIN_FROM_ITEMS = frozenset({"SUBQUERY", "JOIN", "EMPTY", "EXPRESSION_LIST", "PIVOT"})
_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
# Plan operators that scan only what the query itself computed (VALUES, CTEs,
# the one-row input of SELECT 1). Any other *_SCAN without a table or function
# named is one this check does not know, and refused.
_INNER_SCANS = frozenset(
    {
        "DUMMY_SCAN", "CTE_SCAN", "REC_CTE_SCAN", "REC_KEY_SCAN", "DELIM_SCAN",
        "COLUMN_DATA_SCAN", "CHUNK_SCAN", "EXPRESSION_SCAN", "POSITIONAL_SCAN",
    }
)  # fmt: skip

# The schemas an unqualified name is looked up in (current_schemas(true)), in every
# attached database (the file, temp and system): a WITH query may shadow only these.
_SEARCH_PATH = frozenset({"main", "pg_catalog"})

# Names and oids only: a view's SQL text costs DuckDB more to produce than the rest
# of the check, and the oid changes whenever a view is replaced.
_CATALOG_SQL = (
    "SELECT current_database() AS current, database_name, schema_name, view_name AS name, "
    "view_oid AS oid, true AS is_view FROM duckdb_views() UNION ALL "
    "SELECT current_database(), database_name, schema_name, table_name, table_oid, false "
    "FROM duckdb_tables()"
)


@dataclass(frozen=True)
class _Reads:
    """What a plan scans: qualified table names and table function names (upper case)."""

    tables: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Catalog:
    database: str
    views: dict[str, tuple[str, int]]  # lower-case va_ view name -> (its name, its oid)
    others: dict[str, str]  # lower-case name of any other relation on the path -> its full name


@dataclass
class _Parse:
    tables: list[tuple[str, str, str]] = field(default_factory=list)  # catalog, schema, name
    table_functions: list[str] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)
    ctes: set[str] = field(default_factory=set)
    parameters: set[str] = field(default_factory=set)


class EngineCheck:
    """Checks client queries on one DuckDB database; remembers what each view reads."""

    def __init__(self) -> None:
        self._view_reads: dict[tuple[str, int], _Reads] = {}  # (view, its oid) -> reads
        self._lock = threading.Lock()

    def check(self, cursor: dbapi.Cursor, sql: str, parameters: pa.RecordBatch | None) -> None:
        """Refuse `sql` unless DuckDB would read only va_ views with it."""
        parsed = _parse(cursor, sql)
        catalog = _catalog(cursor)
        views = _check_parse(parsed, catalog)
        allowed = self._allowed(cursor, catalog, views)
        if parameters is None and parsed.parameters:
            # EXPLAIN needs a value for each placeholder; NULL binds to any type.
            parameters = pa.record_batch(
                [pa.nulls(1)] * len(parsed.parameters),
                names=[f"${n}" for n in range(1, len(parsed.parameters) + 1)],
            )
        _check_plan(_explain(cursor, sql, parameters), allowed)

    def _allowed(self, cursor: dbapi.Cursor, catalog: _Catalog, views: set[str]) -> _Reads:
        tables: set[str] = set()
        functions = {name.upper() for name in TABLE_FUNCTIONS}
        for view in views:
            reads = self._reads_of(cursor, *catalog.views[view])
            tables |= reads.tables
            functions |= reads.functions
        return _Reads(frozenset(tables), frozenset(functions))

    def _reads_of(self, cursor: dbapi.Cursor, view: str, oid: int) -> _Reads:
        # Keyed by the view's oid, so a view that is replaced is planned afresh.
        key = (view, oid)
        with self._lock:
            known = self._view_reads.get(key)
        if known is None:
            quoted = view.replace('"', '""')
            known = _reads(_explain(cursor, f'SELECT * FROM main."{quoted}"', None))
            with self._lock:
                self._view_reads[key] = known
        return known


def _refuse(detail: str) -> InvalidQuery:
    return InvalidQuery(RULE, detail)


def _parse(cursor: dbapi.Cursor, sql: str) -> _Parse:
    cursor.execute("SELECT json_serialize_sql(?)", pa.record_batch([pa.array([sql])], ["sql"]))
    tree = json.loads(cursor.fetchone()[0])
    if tree.get("error"):
        message = tree.get("error_message", "no reason given")
        if tree.get("error_type") == "parser":  # a mistake in the query, said as DuckDB says it
            raise BackendError("duckdb", f"Parser Error: {message}", "invalid")
        raise _refuse(f"DuckDB does not read this as one SELECT query: {message}")
    statements = tree.get("statements", [])
    if len(statements) != 1:
        raise _refuse(f"DuckDB reads {len(statements)} statements here; send one SELECT query")
    parsed = _Parse()
    for node in _nodes(statements[0]["node"]):
        _note(node, parsed)
    return parsed


def _nodes(tree: object) -> Iterator[dict]:
    # Iterative: a deeply nested query must not exhaust Python's stack.
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _note(node: dict, parsed: _Parse) -> None:
    if "function_name" in node:
        parsed.functions.add(str(node["function_name"]).lower())
    if node.get("class") == "PARAMETER":
        parsed.parameters.add(str(node.get("identifier")))
    if "cte_map" in node:
        if node.get("type") not in _QUERY_NODES:
            raise _refuse(f"DuckDB reads a {node.get('type')} here, which this check does not know")
        parsed.ctes |= {str(entry["key"]).lower() for entry in node["cte_map"].get("map", [])}
    if "class" in node or not {"type", "alias", "sample"} <= node.keys():
        return
    kind = node["type"]  # a FROM item
    if kind == "BASE_TABLE":
        parsed.tables.append((node["catalog_name"], node["schema_name"], node["table_name"]))
    elif kind == "TABLE_FUNCTION":
        parsed.table_functions.append(str(node["function"].get("function_name", "?")).lower())
    elif kind == "SHOW_REF":
        raise _refuse("DuckDB would run DESCRIBE, SHOW or SUMMARIZE here, which read the catalog")
    elif kind not in _PLAIN_FROM_ITEMS:
        raise _refuse(f"DuckDB reads a {kind} here, which this check does not know")


def _catalog(cursor: dbapi.Cursor) -> _Catalog:
    cursor.execute(_CATALOG_SQL)
    rows = cursor.fetch_arrow_table().to_pylist()
    database = rows[0]["current"]
    views: dict[str, tuple[str, int]] = {}
    others: dict[str, str] = {}
    for row in rows:
        name = row["name"]
        mine = row["database_name"] == database and row["schema_name"] == "main"
        if mine and row["is_view"] and name.lower().startswith("va_"):
            views[name.lower()] = (name, row["oid"])
        elif row["schema_name"] in _SEARCH_PATH:
            others[name.lower()] = f"{row['database_name']}.{row['schema_name']}.{name}"
    return _Catalog(database, views, others)


def _check_parse(parsed: _Parse, catalog: _Catalog) -> set[str]:
    """Check DuckDB's parse; the va_ views it names (lower case)."""
    for name in sorted(parsed.functions):
        if is_forbidden_function(name):
            raise _refuse(
                f"DuckDB would call {name}(), which reaches files, settings, the catalog "
                "or the server, or runs SQL of its own"
            )
    for name in parsed.table_functions:
        if name not in TABLE_FUNCTIONS:
            raise _refuse(
                f"DuckDB would read the table function {name}(); only "
                f"{', '.join(sorted(TABLE_FUNCTIONS))} may stand in FROM"
            )
    for name in sorted(parsed.ctes):
        if name in catalog.others:
            raise _refuse(
                f"the WITH query {name!r} has the name of {catalog.others[name]}, which "
                "DuckDB may read in its place; choose another name"
            )
    views: set[str] = set()
    for catalog_name, schema, name in parsed.tables:
        shown = ".".join(part for part in (catalog_name, schema, name) if part)
        lowered = name.lower()
        qualified = bool(catalog_name or schema)
        if (
            catalog_name.lower() in ("", catalog.database.lower())
            and schema.lower() in ("", "main")
            and lowered in catalog.views
        ):
            views.add(lowered)
        elif not qualified and lowered in parsed.ctes:
            continue
        else:
            raise _refuse(
                f"DuckDB would read {shown!r}, which is not a va_ view; queries may read "
                f"only: {', '.join(sorted(v for v, _ in catalog.views.values())) or '(none)'}"
            )
    return views


def _explain(cursor: dbapi.Cursor, sql: str, parameters: pa.RecordBatch | None) -> list[dict]:
    cursor.execute(f"EXPLAIN (FORMAT JSON)\n{sql}", parameters)
    rows = cursor.fetch_arrow_table().to_pylist()
    return [node for row in rows for node in json.loads(row["explain_value"])]


def _reads(plan: list[dict]) -> _Reads:
    tables: set[str] = set()
    functions: set[str] = set()
    for node in _nodes(plan):
        if "name" not in node or "children" not in node:
            continue
        info = node.get("extra_info") or {}
        if "Table" in info:
            tables.add(str(info["Table"]))
        elif "Function" in info:
            functions.add(str(info["Function"]).upper())
        elif str(node["name"]).endswith("_SCAN") and node["name"] not in _INNER_SCANS:
            functions.add(str(node["name"]))
    return _Reads(frozenset(tables), frozenset(functions))


def _check_plan(plan: list[dict], allowed: _Reads) -> None:
    reads = _reads(plan)
    tables = sorted(reads.tables - allowed.tables)
    if tables:
        raise _refuse(
            f"DuckDB's plan scans the table {tables[0]}, which no va_ view the query names reads"
        )
    functions = sorted(reads.functions - allowed.functions)
    if functions:
        raise _refuse(
            f"DuckDB's plan scans {functions[0].lower()}, which no va_ view the query names "
            "reads and which is not a generating function"
        )
