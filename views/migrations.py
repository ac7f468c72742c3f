"""Schema migrations: `pre` creates tables, `post` (re)creates the `va_` views.

Pre migrations are numbered SQL files applied once each, in order, recorded in
a ledger with their checksum. Post migrations are the view files `va_*.sql`:
each holds only the view's SELECT, so its file name is its view name; a view is
(re)created whenever its file changes or the view is missing, which is why
dropping a new `va_*.sql` file into a views folder is all it takes to publish
one. Where DuckDB and PostgreSQL need different SQL, `NAME.<backend>.sql`
stands in for `NAME.sql` on that backend; everything else is written once in
the SQL both engines share.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flightdeck.base_error import FlightdeckError

from . import reader_role
from .store import Store

__all__ = [
    "Migration",
    "MigrationConflict",
    "MigrationState",
    "apply",
    "grant_to_readers",
    "load_migrations",
    "plan",
    "status",
]

SQL_DIR = Path(__file__).parent / "sql"
LEDGER = "tb_flightdeck_migration"
PHASES = ("pre", "post")
_VIEW_NAME = re.compile(r"^va_[a-z0-9_]+$")


class MigrationConflict(FlightdeckError):
    """An applied pre migration whose file has changed since: never re-run silently."""


@dataclass(frozen=True)
class Migration:
    phase: str  # "pre" | "post"
    name: str  # file stem without the backend suffix; the view name for post
    source: Path
    body: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.body.encode()).hexdigest()[:16]

    def statements(self, backend: str) -> list[str]:
        if self.phase == "pre":
            return _split(self.body)
        drop = f'DROP VIEW IF EXISTS "{self.name}"' + (
            " CASCADE" if backend == "postgresql" else ""
        )
        create = f'CREATE VIEW "{self.name}" AS\n{_strip_semicolon(self.body)}'
        if backend != "postgresql":
            return [drop, create]
        # A re-created view has lost its grants: give them back in the same
        # transaction, so queries (which log in as the reader role) never miss it.
        return [drop, create, grant_to_readers(self.name)]


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    state: str  # "applied" | "pending" | "changed"
    applied_at: str | None = None


def load_migrations(backend: str, view_dirs: Iterable[Path] = ()) -> list[Migration]:
    """Every migration for `backend`: packaged pre files, then views (packaged + extra)."""
    pre = _pick(SQL_DIR / "pre", "*.sql", backend, "pre")
    views: dict[str, Migration] = {}
    for folder in (SQL_DIR / "post", *view_dirs):
        for migration in _pick(Path(folder), "va_*.sql", backend, "post"):
            views[migration.name] = migration  # a later folder overrides a view by name
    for name in views:
        if not _VIEW_NAME.match(name):
            raise FlightdeckError(f"view file name {name!r} must match va_[a-z0-9_]+")
    return pre + sorted(views.values(), key=lambda m: m.name)


def _pick(folder: Path, pattern: str, backend: str, phase: str) -> list[Migration]:
    chosen: dict[str, Path] = {}
    for path in sorted(folder.glob(pattern)):
        stem, _, suffix = path.stem.partition(".")
        if suffix and suffix != backend:
            continue
        if suffix or stem not in chosen:
            chosen[stem] = path
    return [Migration(phase, stem, path, path.read_text()) for stem, path in sorted(chosen.items())]


# Every role queries log in as (views/reader_role.py) may read every va_ view.
_GRANT_TO_READERS = f"""DO $$
DECLARE reader TEXT;
BEGIN
    IF to_regclass('{reader_role.CREDENTIALS}') IS NOT NULL THEN
        FOR reader IN EXECUTE 'SELECT c.role_name FROM {reader_role.CREDENTIALS} c
                               JOIN pg_roles r ON r.rolname = c.role_name' LOOP
            EXECUTE format('GRANT SELECT ON %I TO %I', '{{view}}', reader);
        END LOOP;
    END IF;
END $$"""


def grant_to_readers(view: str) -> str:
    """PostgreSQL: the statement that lets every reader role read `view`."""
    return _GRANT_TO_READERS.format(view=view)


def _split(body: str) -> list[str]:
    # Our DDL has no semicolons inside literals: a statement ends at `;` + newline,
    # outside $$-quoted bodies (a DO block's statements end in `;` too).
    statements, current = [], []
    for number, piece in enumerate(body.split("$$")):
        if number % 2:  # inside $$ ... $$
            current.append(f"$${piece}$$")
            continue
        *ended, rest = re.split(r";[ \t]*(?:\n|$)", piece)
        for part in ended:
            statements.append("".join(current) + part)
            current = []
        current.append(rest)
    statements.append("".join(current))
    return [p.strip() for p in statements if _has_code(p)]


def _has_code(sql: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


def _strip_semicolon(sql: str) -> str:
    return sql.strip().rstrip(";").rstrip()


def status(store: Store, migrations: Sequence[Migration]) -> list[MigrationState]:
    """The truthful state of each migration: ledger and checksum, and for views the catalog."""
    ledger = _read_ledger(store)
    existing = _existing_views(store)
    states = []
    for m in migrations:
        entry = ledger.get(m.name)
        if entry is None:
            states.append(MigrationState(m, "pending"))
        elif entry[0] != m.checksum:
            states.append(MigrationState(m, "changed", entry[1]))
        elif m.phase == "post" and m.name not in existing:
            states.append(MigrationState(m, "pending", entry[1]))
        else:
            states.append(MigrationState(m, "applied", entry[1]))
    return states


def plan(store: Store, migrations: Sequence[Migration], phase: str = "all") -> list[Migration]:
    """What `apply` would run, in order; a changed pre migration is a conflict."""
    todo = []
    for st in status(store, migrations):
        if phase not in ("all", st.migration.phase) or st.state == "applied":
            continue
        if st.state == "changed" and st.migration.phase == "pre":
            raise MigrationConflict(
                f"migration {st.migration.name!r} was applied at {st.applied_at} and its file "
                f"{st.migration.source} has changed since; write a new migration instead"
            )
        todo.append(st.migration)
    return todo


def apply(store: Store, migrations: Sequence[Migration], phase: str = "all") -> list[Migration]:
    """Apply what is pending, each migration in its own transaction with its ledger row."""
    todo = plan(store, migrations, phase)
    for m in todo:
        with store.write() as conn:
            with conn.cursor() as cursor:
                for statement in m.statements(store.backend):
                    cursor.execute(statement)
                _record(cursor, m)
            conn.commit()
    return todo


def _ensure_ledger(store: Store) -> None:
    with store.write() as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {LEDGER} (name TEXT PRIMARY KEY, phase TEXT NOT NULL,"
                " checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
        conn.commit()


def _read_ledger(store: Store) -> dict[str, tuple[str, str]]:
    _ensure_ledger(store)
    sql = f"SELECT name, checksum, CAST(applied_at AS TEXT) AS applied_at FROM {LEDGER}"
    with store.read_internal(sql) as reader:
        rows = reader.read_all().to_pylist()
    return {r["name"]: (r["checksum"], r["applied_at"]) for r in rows}


def _existing_views(store: Store) -> set[str]:
    sql = (
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = '{store.schema_name}' AND table_type = 'VIEW'"
    )
    with store.read_internal(sql) as reader:
        return set(reader.read_all().column(0).to_pylist())


def _record(cursor, m: Migration) -> None:
    # Values are our own file names and hex digests, never user input.
    cursor.execute(
        f"INSERT INTO {LEDGER} (name, phase, checksum, applied_at) "
        f"VALUES ('{m.name}', '{m.phase}', '{m.checksum}', CURRENT_TIMESTAMP) "
        "ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, "
        "applied_at = excluded.applied_at"
    )
