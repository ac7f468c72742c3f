"""The SQL guard: decides whether a client's query text may run against the store.

The text runs afterwards exactly as the client sent it, so every rule here is about
what the database will do with that text. sqlglot reads it in the store's own
dialect, and whatever the guard cannot see through is refused rather than guessed.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Collection, Iterator

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokens import Token, TokenType

from .complexity import MAX_QUERY_BYTES, check_nesting, check_size, too_complex
from .errors import InvalidQuery, NotFound
from .parse_errors import describe_parse_error

__all__ = ["TABLE_FUNCTIONS", "check_query", "is_forbidden_function"]

# Our dialect names (the --db URL schemes) to sqlglot's.
_DIALECTS = {"duckdb": "duckdb", "postgresql": "postgres"}

# The one schema a va_ view may be qualified with: the one migrations create them in.
_VIEW_SCHEMA = {"duckdb": "main", "postgres": "public"}

# Schemas and catalogs of the databases' own metadata (PostgreSQL also has
# pg_temp_N and pg_toast_temp_N, hence the prefixes). Unqualified system relations
# (pg_class, duckdb_tables, sqlite_master) resolve through the search path, so
# their names count too.
_SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "pg_toast", "temp", "system"})
_SYSTEM_PREFIXES = ("pg_", "duckdb_", "sqlite_")

# Names a WITH query may not take: flightdeck's tables and the system relations
# (DuckDB's catalog views include pragma_database_list). Where the database and the
# guard disagree about a CTE's scope, the real relation of that name is what it reads.
_SHADOWED_PREFIXES = ("tb_", "pragma_", *_SYSTEM_PREFIXES)

# Statements that write, change the session or reach outside the store, refused
# anywhere in the tree (a DELETE can hide in a CTE). Looked up by name because
# sqlglot adds classes between releases; a release without one of them parses that
# statement as exp.Command, which is refused too. DML and DDL cover INSERT, UPDATE,
# DELETE, MERGE, COPY and CREATE.
_WRITE_NODE_NAMES = (
    "DML", "DDL", "Drop", "Alter", "TruncateTable", "Command", "Set", "Pragma", "Attach",
    "Detach", "Install", "Into", "Lock", "Use", "Transaction", "Commit", "Rollback", "Grant",
    "Revoke", "Analyze", "Refresh", "LoadData", "Kill", "Cache", "Uncache", "Comment",
    "Declare", "Export", "Execute", "Put", "Get",
)  # fmt: skip
_WRITE_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name) for name in _WRITE_NODE_NAMES if hasattr(exp, name)
)

# The only table functions allowed in FROM: they generate rows and reach nothing.
# sqlglot turns them into typed classes (DuckDB's range(10) becomes GenerateSeries).
TABLE_FUNCTIONS = frozenset({"generate_series", "range", "unnest"})
_TABLE_FUNCTION_CLASSES = (exp.GenerateSeries, exp.Unnest)

# Functions that reach files, the network, settings, sequences or the server, take
# locks, write large objects, or run SQL text of their own (query(), query_to_xml(),
# ts_stat()) and so would read around the va_ rule. Families go by prefix:
# PostgreSQL's pg_ functions (advisory locks among them), lo_ large objects.
_FORBIDDEN_PREFIXES = (
    "read_", "parquet_", "iceberg_", "delta_", "sqlite_", "postgres_", "mysql_", "pg_",
    "lo_", "dblink", "txid_", "duckdb_", "pragma_", "http_", "query", "table_to_",
    "cursor_to_", "schema_to_", "database_to_", "json_execute", "arrow_scan", "st_read",
    "brin_", "binary_upgrade_", "ducklake_", "start_ui", "stop_ui", "bt_index_",
)  # fmt: skip
_FORBIDDEN_NAMES = frozenset(
    {
        "glob", "sniff_csv", "getenv", "current_setting", "set_config", "nextval",
        "setval", "currval", "lastval", "checkpoint", "force_checkpoint",
        "load_extension", "ts_stat", "ts_rewrite", "gin_clean_pending_list",
        "which_secret", "dbgen", "dsdgen", "from_substrait", "from_substrait_json",
        "get_substrait", "get_substrait_json", "lowrite", "loread", "verify_heapam",
        "get_raw_page",
    }
)  # fmt: skip
_ALLOWED_FUNCTIONS = frozenset({"pg_typeof"})

# Tokens whose text is a literal's content, never a name.
_LITERAL_TOKENS = frozenset(
    token_type
    for token_type in TokenType
    if token_type.name.endswith("STRING") or token_type == TokenType.NUMBER
)


def check_query(
    sql: str, dialect: str, known_views: Collection[str], *, max_bytes: int = MAX_QUERY_BYTES
) -> None:
    """Refuse `sql` unless it is one read-only query over `known_views` only.

    Raises InvalidQuery naming the rule broken, or NotFound for an unknown va_ view.
    Text over `max_bytes` is refused before it is read.
    """
    check_size(sql, max_bytes)
    try:
        _check(sql, dialect, known_views)
    except RecursionError:
        raise too_complex() from None


def _check(sql: str, dialect: str, known_views: Collection[str]) -> None:
    read = _sqlglot_dialect(dialect)
    tokens, statement = _parse_single(sql, read)
    _check_read_only(statement, tokens)
    _check_spacing(sql, tokens)
    _check_unicode_names(tokens)
    _check_functions(statement, tokens)
    if read == "postgres":
        _check_field_selections(statement)
    _check_string_tables(statement, sql)
    normalized = normalize_identifiers(statement, dialect=read)
    _check_ctes(normalized)
    _check_tables(normalized, read, frozenset(known_views))


def is_forbidden_function(name: str) -> bool:
    """Whether a function called `name` (lower case) reaches files, the network,
    settings, the server or the catalog, or runs SQL of its own."""
    if name in _ALLOWED_FUNCTIONS:
        return False
    return name in _FORBIDDEN_NAMES or name.startswith(_FORBIDDEN_PREFIXES)


def _sqlglot_dialect(dialect: str) -> str:
    try:
        return _DIALECTS[dialect]
    except KeyError:
        raise ValueError(
            f"unknown dialect {dialect!r}; expected one of {sorted(_DIALECTS)}"
        ) from None


def _parse_single(sql: str, read: str) -> tuple[list[Token], exp.Expression]:
    dialect = Dialect.get_or_raise(read)
    try:
        tokens = dialect.tokenize(sql)
    except TokenError as err:
        raise InvalidQuery(
            "syntax",
            f"could not read the query (a quote or comment left open?): {_short(str(err))}",
        ) from err
    check_nesting(tokens)
    # Count statements on tokens, not on the parse: a second statement the parser
    # cannot read is still a second statement, and ';' inside strings and comments
    # is never a token.
    statements = _split_statements(tokens)
    if not statements:
        raise InvalidQuery("empty", "the query is empty: only whitespace, comments or ';'")
    if len(statements) > 1:
        start = statements[1][0].start
        raise InvalidQuery(
            "single-statement",
            f"send one statement; a second one starts at {_short(sql[start:], 40)!r}",
        )
    try:
        parsed = dialect.parser().parse(tokens, sql)
    except ParseError as err:
        raise InvalidQuery("syntax", f"could not parse the query: {_parse_error(err)}") from err
    # A ';' followed by a comment parses as an exp.Semicolon holding that comment.
    real = [node for node in parsed if node is not None and not isinstance(node, exp.Semicolon)]
    if not real:  # sqlglot reads a lone keyword (`AS`) as no statement at all
        raise InvalidQuery(
            "syntax", f"expected a SELECT or WITH query, found {_short(tokens[0].text)!r}"
        )
    return tokens, real[0]


def _split_statements(tokens: list[Token]) -> list[list[Token]]:
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [statement for statement in statements if statement]


def _parse_error(err: ParseError) -> str:
    if not err.errors:
        return _short(str(err))
    first = err.errors[0]
    description = describe_parse_error(first["description"])
    return f"{_short(description)} (line {first['line']}, column {first['col']})"


def _short(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check_read_only(statement: exp.Expression, tokens: list[Token]) -> None:
    # sqlglot reads unknown words as a bare expression (SELEC * FRM is a product of
    # two columns); no database runs that as a statement.
    if isinstance(statement, exp.Condition):
        raise InvalidQuery("syntax", f"expected a SELECT or WITH query, found {tokens[0].text!r}")
    if not isinstance(statement, exp.Query):
        raise InvalidQuery(
            "read-only",
            f"only SELECT or WITH queries may run; this statement starts with "
            f"{tokens[0].text.upper()!r}",
        )
    node = statement.find(*_WRITE_NODES)
    if node is not None:
        raise InvalidQuery("read-only", f"{_describe(node)} is not allowed: queries may only read")


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Into):
        return f"SELECT ... INTO {node.this.sql() if node.this else ''} (it creates a table)"
    if isinstance(node, exp.Lock):
        return "a row lock (FOR UPDATE / FOR SHARE)"
    if isinstance(node, exp.Command):
        return f"{str(node.this).upper()} command"
    return node.key.upper()


# Between tokens, the spacing every reader agrees on. sqlglot takes any character
# str.isspace() accepts as a space; DuckDB and PostgreSQL read U+00A0, U+2028, the
# ASCII separators and (PostgreSQL 15) \v as part of the name beside them, so the
# guard and the database would see different names. Comments sit in the same gaps
# and are held to the same rule: where a comment ends is a reading too.
_PLAIN_SPACING = frozenset(" \t\n\r\f")


def _check_spacing(sql: str, tokens: list[Token]) -> None:
    """Refuse, outside strings and quoted names, a space or control character that
    not every reader takes as a space."""
    covered = 0
    for token in [*tokens, None]:
        start = len(sql) if token is None else token.start
        for position in range(covered, start):
            char = sql[position]
            if char not in _PLAIN_SPACING and (
                char.isspace() or unicodedata.category(char) == "Cc"
            ):
                _refuse_spacing(sql, position)
        if token is not None:
            covered = max(covered, token.end + 1)


def _refuse_spacing(sql: str, position: int) -> None:
    char = sql[position]
    line = sql.count("\n", 0, position) + 1
    column = position - (sql.rfind("\n", 0, position) + 1) + 1
    name = unicodedata.name(char, "a control character")
    raise InvalidQuery(
        "unverifiable",
        f"the character U+{ord(char):04X} ({name}) at line {line}, column {column} is "
        "read as a space by some SQL readers and as part of a name by others; write "
        "a plain space, tab or newline there",
    )


def _check_unicode_names(tokens: list[Token]) -> None:
    # PostgreSQL decodes U&"\0070g_read_file" to pg_read_file; sqlglot reads it as
    # the column U, '&', and a name with backslashes, so no later check would match.
    for u, amp, name in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if (
            u.text.upper() == "U"
            and amp.token_type == TokenType.AMP
            and name.token_type == TokenType.IDENTIFIER
            and u.end + 1 == amp.start
            and amp.end + 1 == name.start
        ):
            raise InvalidQuery(
                "unverifiable",
                f'the Unicode-escaped name U&"{name.text}" is not accepted: the guard '
                "cannot read it the way the database does; write the name plainly",
            )


def _check_functions(statement: exp.Expression, tokens: list[Token]) -> None:
    for func in statement.find_all(exp.Func):
        name = _function_name(func)
        _refuse_forbidden(name)
        if _in_from(func) and not (
            name in TABLE_FUNCTIONS or isinstance(func, _TABLE_FUNCTION_CLASSES)
        ):
            raise InvalidQuery(
                "forbidden-function",
                f"table function {name!r} is not allowed in FROM; only "
                f"{', '.join(sorted(TABLE_FUNCTIONS))} may be used there",
            )
    # PostgreSQL reads t.f as f(t) when f takes one argument (a whole row, or a
    # column's value in t.c.f): a call with no parentheses. Only the first part of a
    # name is never a call.
    for column in statement.find_all(exp.Column):
        for part in column.parts[1:]:
            _refuse_forbidden(part.name.lower())
    # sqlglot keeps the name as written only for functions it does not know; for the
    # ones it knows it keeps its own canonical name. The database resolves the name
    # as written, so check every name that is followed by '(' as well.
    for name in _called_names(tokens):
        _refuse_forbidden(name)


def _check_field_selections(statement: exp.Expression) -> None:
    # PostgreSQL reads (x).f as f(x) for any one-argument function f, whatever x is:
    # a literal, a cast, a subquery, a call, a row. Whether `.f` is a field or a call
    # depends on x's type and on which functions exist, which the guard cannot know,
    # so field selection on anything but a plain column name is refused outright
    # (schema-qualified calls such as pg_catalog.f(x) parse the same way).
    for dot in statement.find_all(exp.Dot):
        if isinstance(dot.parent, exp.DataType):
            continue  # a schema-qualified type name in a cast, not a value
        field = dot.expression
        name = field.name if isinstance(field, exp.Identifier) else field.sql("postgres")
        _refuse_forbidden(name.lower())
        raise InvalidQuery(
            "unverifiable",
            f"field selection {_short(dot.sql('postgres'), 80)!r} (.{name} on an expression) "
            "is not accepted on PostgreSQL: it may call the function "
            f"{name!r} on the value; select columns by name instead",
        )


def _function_name(func: exp.Func) -> str:
    # exp.Anonymous keeps the name as written; typed classes (exp.ReadCSV) know theirs.
    return (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()


def _in_from(func: exp.Func) -> bool:
    return func.arg_key == "this" and isinstance(
        func.parent, (exp.Table, exp.Lateral, exp.From, exp.Join)
    )


def _called_names(tokens: list[Token]) -> Iterator[str]:
    for token, following in itertools.pairwise(tokens):
        if following.token_type == TokenType.L_PAREN and token.token_type not in _LITERAL_TOKENS:
            yield token.text.lower()


def _refuse_forbidden(name: str) -> None:
    if is_forbidden_function(name):
        raise InvalidQuery(
            "forbidden-function",
            f"function {name!r} is not allowed: it reaches files, the network, settings "
            "or the server, or runs SQL of its own",
        )


def _check_string_tables(statement: exp.Expression, sql: str) -> None:
    # DuckDB reads FROM '/etc/passwd' as a file; sqlglot turns the string into a
    # quoted identifier, and only the source text tells the two quotes apart.
    for table in statement.find_all(exp.Table):
        for part in table.parts:
            if not (isinstance(part, exp.Identifier) and part.quoted):
                continue
            start = part.meta.get("start")
            quote = sql[start] if start is not None and start < len(sql) else None
            if quote == "'":
                raise InvalidQuery(
                    "forbidden-function",
                    f"the string {part.name!r} is used as a table, which DuckDB reads as "
                    "a file; name a va_ view instead",
                )
            if quote != '"':
                raise InvalidQuery(
                    "unverifiable", f"cannot tell how the table name {part.name!r} was quoted"
                )


def _check_ctes(statement: exp.Expression) -> None:
    # sqlglot counts a WITH RECURSIVE query's name as the CTE throughout its body, but
    # only the recursive term (after a plain UNION) reads the CTE: everywhere else the
    # database binds the name to the real relation. DuckDB does so in the anchor, in
    # EXCEPT, INTERSECT and UNION BY NAME bodies, and in a body that is no UNION.
    for with_ in statement.find_all(exp.With):
        seen: set[str] = set()
        for cte in with_.expressions:
            name = cte.alias_or_name
            if name.lower() in seen:
                raise InvalidQuery(
                    "unverifiable",
                    f"the WITH query {name!r} is defined twice; give each its own name",
                )
            seen.add(name.lower())
            _check_self_references(cte, name, bool(with_.args.get("recursive")))
            _check_cte_name(name)


def _check_self_references(cte: exp.CTE, name: str, recursive: bool) -> None:
    if not recursive:
        return  # the name means the real relation, as sqlglot sees it too
    term = _recursive_term(cte)
    for table in cte.this.find_all(exp.Table):
        if len(table.parts) != 1 or table.name.lower() != name.lower():
            continue
        if term is None or not _within(table, term):
            raise InvalidQuery(
                "unverifiable",
                f"the WITH RECURSIVE query {name!r} reads {name!r} outside its recursive "
                "part (the query after a plain UNION or UNION ALL), where the database "
                "reads a table of that name instead; refer to it only after the UNION",
            )


def _recursive_term(cte: exp.CTE) -> exp.Expression | None:
    body = cte.this
    plain_union = isinstance(body, exp.Union) and not any(
        body.args.get(arg) for arg in ("by_name", "side", "kind", "on")
    )
    return body.expression if plain_union else None


def _within(node: exp.Expression, ancestor: exp.Expression) -> bool:
    parent: exp.Expression | None = node
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False


def _check_cte_name(name: str) -> None:
    lowered = name.lower()
    if lowered.startswith(_SHADOWED_PREFIXES) or lowered in _SYSTEM_SCHEMAS:
        raise InvalidQuery(
            "va-views-only",
            f"the WITH query name {name!r} is also the name of a table or a system "
            "relation, which the database may read in its place; choose another name",
        )


def _check_tables(statement: exp.Expression, read: str, known: frozenset[str]) -> None:
    try:
        scopes = traverse_scope(statement)
    except Exception as err:  # sqlglot raises several types here; any means "unknown"
        raise InvalidQuery(
            "unverifiable", f"the guard could not work out what each name refers to ({err})"
        ) from err
    checked: set[int] = set()
    for scope in scopes:
        for table in scope.tables:
            checked.add(id(table))
            _check_table(table, scope, read, known)
    # A table that no scope claims is one whose meaning the guard does not know.
    for table in statement.find_all(exp.Table):
        if id(table) not in checked:
            raise InvalidQuery(
                "unverifiable",
                f"cannot tell what the table {table.sql(read)!r} refers to at that point",
            )


def _check_table(table: exp.Table, scope: Scope, read: str, known: frozenset[str]) -> None:
    if isinstance(table.this, exp.Func) or table.args.get("rows_from"):
        return  # a table function: checked with the other functions
    if not isinstance(table.this, exp.Identifier):
        raise InvalidQuery(
            "unverifiable", f"cannot tell what the table {table.sql(read)!r} refers to"
        )
    *qualifiers, name = (part.name for part in table.parts)
    shown = ".".join((*qualifiers, name))
    # Only an unqualified name can mean a CTE, and only one visible at this point.
    if not qualifiers and name in scope.cte_sources:
        return
    if any(_is_system(part.lower()) for part in (*qualifiers, name)):
        raise InvalidQuery(
            "system-catalog",
            f"{shown!r} belongs to the system catalog; "
            f"queries may read only va_ views: {_listing(known)}",
        )
    if qualifiers and qualifiers != [_VIEW_SCHEMA[read]]:
        raise InvalidQuery(
            "va-views-only",
            f"table {shown!r} is qualified by {'.'.join(qualifiers)!r}; a va_ view may be "
            f"qualified only by {_VIEW_SCHEMA[read]!r}",
        )
    if not name.lower().startswith("va_"):
        raise InvalidQuery(
            "va-views-only",
            f"table {shown!r} is not a va_ view; queries may read only: {_listing(known)}",
        )
    if name not in known:
        raise NotFound("view", name, known)


def _is_system(name: str) -> bool:
    return name in _SYSTEM_SCHEMAS or name.startswith(_SYSTEM_PREFIXES)


def _listing(known: frozenset[str]) -> str:
    return ", ".join(sorted(known)) if known else "(no va_ views exist)"
