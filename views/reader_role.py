"""The least-privilege PostgreSQL login that every client query runs as.

The SQL guard is the first wall; this is the second. Client queries run on
connections that log in as a role which may only SELECT the `va_` views (a view
reads its base tables with its owner's rights), owns nothing, and is not a
superuser nor a member of the roles that read or write server files. It logs in
on its own (not SET ROLE, which an escaped query could undo with RESET ROLE),
even when the operator's --db URL names a superuser.

By default migration 010 creates the role `flightdeck_reader_<database>` and
the server sets its password: a random one, kept in `tb_reader_credential`
(readable by the owner only), so every process on one database shares it.
Where the server may not create roles (managed PostgreSQL), the operator
creates one and passes its URL as --db-read-url; either way the role is
checked before any query runs, and a role with too much power stops the start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import adbc_driver_manager.dbapi as dbapi
from flightdeck.base_error import FlightdeckError

__all__ = [
    "CREDENTIALS",
    "ReaderRoleError",
    "check_reader",
    "grant_views",
    "reader_url",
    "url_user",
    "with_session",
]

CREDENTIALS = "tb_reader_credential"

# Predefined roles that read or write server files, run programs, read every
# table, signal other sessions or see hidden settings.
_POWERFUL_ROLES = (
    "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program",
    "pg_read_all_data", "pg_write_all_data", "pg_signal_backend", "pg_read_all_settings",
    "pg_read_all_stats", "pg_monitor", "pg_checkpoint", "pg_database_owner",
)  # fmt: skip


class ReaderRoleError(FlightdeckError):
    """The role queries log in as is missing, unusable or too powerful; `role` names it."""

    def __init__(self, role: str, problem: str) -> None:
        super().__init__(f"PostgreSQL reader role {role!r}: {problem}")
        self.role = role
        self.problem = problem


def reader_url(owner: dbapi.Connection, owner_url: str, read_url: str | None, schema: str) -> str:
    """The URL the read pool logs in with; commits on `owner` (the --db connection).

    With `read_url` (an operator-made role) it is registered so that view
    migrations grant it SELECT; without, our own role gets its password set.
    """
    with owner.cursor() as cursor:
        cursor.execute(f"SELECT to_regclass('{CREDENTIALS}') IS NOT NULL")
        if not cursor.fetchone()[0]:
            raise ReaderRoleError(
                url_user(read_url) if read_url else "flightdeck_reader",
                "the store is not migrated (no tb_reader_credential): run `flightdeck "
                "migrate` or `serve`, which set the reader role up",
            )
        # One process at a time: the first one sets the password, the others read it.
        cursor.execute(f"LOCK TABLE {CREDENTIALS} IN EXCLUSIVE MODE")
        if read_url:
            role = url_user(read_url)
            url = read_url
            _register(cursor, role, None)
        else:
            role = _default_role(cursor)
            password = _password(cursor, role)
            url = _with_login(owner_url, role, password)
        grant_views(cursor, role, schema)
    owner.commit()
    return url


def _default_role(cursor: dbapi.Cursor) -> str:
    cursor.execute("SELECT left('flightdeck_reader_' || current_database(), 63)")
    (role,) = cursor.fetchone()
    cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = $1", parameters=(role,))
    if cursor.fetchone()[0] == 0:
        raise ReaderRoleError(
            role,
            "it does not exist, and the --db role may not create roles. Create a reader "
            "role yourself (README, 'PostgreSQL reader role') and pass its URL with "
            "--db-read-url / FLIGHTDECK_DB_READ_URL",
        )
    return role


def _password(cursor: dbapi.Cursor, role: str) -> str:
    cursor.execute(
        f"SELECT password FROM {CREDENTIALS} WHERE role_name = $1 AND password IS NOT NULL",
        parameters=(role,),
    )
    row = cursor.fetchone()
    password = row[0] if row else secrets.token_urlsafe(32)
    if not row:
        _register(cursor, role, password)
    # Set every start (it costs nothing): a password changed behind our back is
    # put back. Sent as a SCRAM verifier, so the secret never reaches server logs.
    try:
        cursor.execute(f"ALTER ROLE {_ident(role)} WITH LOGIN PASSWORD '{_scram(password)}'")
    except dbapi.Error as err:
        raise ReaderRoleError(
            role,
            f"the --db role may not set its password ({_first_line(err)}); give the --db "
            "role CREATEROLE, or create a reader role yourself and pass --db-read-url",
        ) from err
    return password


def _register(cursor: dbapi.Cursor, role: str, password: str | None) -> None:
    cursor.execute(
        f"INSERT INTO {CREDENTIALS} (role_name, password) VALUES ($1, $2) "
        "ON CONFLICT (role_name) DO UPDATE SET password = excluded.password",
        parameters=(role, password),
    )


def grant_views(cursor: dbapi.Cursor, role: str, schema: str) -> None:
    """SELECT on every `va_` view in `schema`, and nothing else, for `role`."""
    cursor.execute(f"GRANT USAGE ON SCHEMA {_ident(schema)} TO {_ident(role)}")
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind = 'v' AND c.relname LIKE 'va\\_%'",
        parameters=(schema,),
    )
    for (view,) in cursor.fetchall():
        cursor.execute(f"GRANT SELECT ON {_ident(schema)}.{_ident(view)} TO {_ident(role)}")


def check_reader(conn: dbapi.Connection, schema: str) -> None:
    """Refuse a reader login that could do more than read the `va_` views."""
    powerful = ", ".join(f"'{name}'" for name in _POWERFUL_ROLES)  # our constants
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, "
            "r.rolbypassrls, "
            "array_to_string(ARRAY(SELECT p.rolname FROM pg_roles p "
            f"  WHERE p.rolname IN ({powerful}) AND pg_has_role(r.oid, p.oid, 'USAGE') "
            "  ORDER BY p.rolname), ', ') AS powers, "
            "array_to_string(ARRAY(SELECT c.relname FROM pg_class c "
            "  JOIN pg_namespace n ON n.oid = c.relnamespace "
            "  WHERE n.nspname = $1 AND c.relname LIKE 'tb\\_%' "
            "  AND has_table_privilege(r.oid, c.oid, "
            "    'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') "
            "  ORDER BY c.relname), ', ') AS tables, "
            "array_to_string(ARRAY(SELECT c.relname FROM pg_class c "
            "  JOIN pg_namespace n ON n.oid = c.relnamespace "
            "  WHERE n.nspname = $1 AND c.relowner = r.oid ORDER BY c.relname), ', ') AS owns "
            "FROM pg_roles r WHERE r.rolname = current_user",
            parameters=(schema,),
        )
        role, superuser, createrole, createdb, replication, bypassrls, powers, tables, owns = (
            cursor.fetchone()
        )
    problems = [
        text
        for flag, text in (
            (superuser, "is a superuser"),
            (createrole, "may create roles (CREATEROLE)"),
            (createdb, "may create databases (CREATEDB)"),
            (replication, "is a replication role"),
            (bypassrls, "bypasses row-level security"),
            (powers, f"is a member of {powers}"),
            (tables, f"has privileges on the tables {tables}"),
            (owns, f"owns {owns}"),
        )
        if flag
    ]
    if problems:
        raise ReaderRoleError(
            role,
            "queries must log in as a role that can only read the va_ views, but this one "
            + "; ".join(problems)
            + ". Use a role made as the README's 'PostgreSQL reader role' says",
        )


def with_session(url: str, timeout_ms: int) -> str:
    """`url` with read-only, timed sessions set at login.

    Login options are the session's defaults, so RESET and DISCARD ALL (which the
    pool runs after every query) return to them; a SET cannot outlive its query.
    A failover URL's `target_session_attrs=read-write` becomes `primary`: libpq's
    read-write test reads default_transaction_read_only, which these sessions set,
    and would refuse every host.
    """
    parts = urlsplit(url)
    query = [
        (k, "primary" if k == "target_session_attrs" and v == "read-write" else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    options = " ".join(value for key, value in query if key == "options")
    options += f" -c default_transaction_read_only=on -c statement_timeout={timeout_ms}"
    query = [(k, v) for k, v in query if k != "options"] + [("options", options.strip())]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _with_login(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query = [(k, v) for k, v in query if k not in ("user", "password", "passfile")]
    login = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=login, query=urlencode(query, quote_via=quote)))


def url_user(url: str) -> str:
    """The role a postgresql:// URL logs in as."""
    parts = urlsplit(url)
    user = dict(parse_qsl(parts.query)).get("user") or unquote(parts.username or "")
    if not user:
        raise ReaderRoleError("?", "--db-read-url must name the role it logs in as")
    return user


def _scram(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier for `password` (RFC 5802, as pg stores it)."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    stored = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server_key)}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
