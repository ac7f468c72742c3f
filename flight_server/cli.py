"""Server-side commands: serve, ingest, migrate, reaggregate, retention, auth, nats-credentials."""

from __future__ import annotations

import argparse
import datetime as dt
import os

from flightdeck.base_error import FlightdeckError
from flightdeck.ingest import fill_derived, reaggregate, retention
from flightdeck.ingest.rollup_install import install
from flightdeck.terminal import say_failed
from flightdeck.views import migrations, open_store
from flightdeck.views.rollup_spec import load_rollups

from .auth import AuthFileError, load_auth_file
from .auth_cli import add_auth_command
from .http.face import HttpStartError
from .nats_credentials_cli import add_nats_credentials_command
from .nats_process import NatsStartError
from .serve import configure_logging, run, run_worker
from .settings import SettingsError, add_arguments, build_settings

__all__ = ["add_commands"]

SERVE_HELP = """\
Serve the va_ views over Arrow Flight.

With no options: a DuckDB file and an embedded nats-server (JetStream) under
./flightdeck-data, on grpc://127.0.0.1:8815. The NATS ingest worker runs inside.
examples:
  flightdeck serve
  flightdeck serve --db postgresql://user@localhost/analytics --port 9000
  FLIGHTDECK_DB=postgresql://… flightdeck serve --views-dir ./my_views
  flightdeck serve --nats nats://localhost:4222 --raw-retention-days 30
"""

INGEST_HELP = """\
Run the NATS ingest worker alone (PostgreSQL only: a DuckDB file belongs to the
one `flightdeck serve` process, which runs the worker itself). Several workers
share the durable consumer `flightdeck-ingest` and split the messages.

examples:
  flightdeck ingest --db postgresql://user@localhost/analytics --nats nats://localhost:4222
"""

REAGGREGATE_HELP = """\
Recompute daily and hourly aggregates from raw events: a check and a repair.
Days whose raw events retention has removed keep their aggregates untouched.
Exits 1 with --check when any row differs.

examples:
  flightdeck reaggregate --date 2024-01-15
  flightdeck reaggregate --all --check
"""

RETENTION_HELP = """\
Delete raw events older than --raw-retention-days whole UTC days (default 90).
Aggregates are kept. `flightdeck serve` and `flightdeck ingest` also do this hourly.

examples:
  flightdeck retention
  flightdeck retention --raw-retention-days 30 --db postgresql://user@localhost/analytics
"""

MIGRATE_HELP = """\
Apply or inspect schema migrations (pre = tables, post = va_ views).

examples:
  flightdeck migrate              # same as `all`
  flightdeck migrate status       # applied, pending and changed migrations
  flightdeck migrate dry-run      # print the SQL that would run
  flightdeck migrate pre --db postgresql://user@localhost/analytics
"""


def add_commands(commands: argparse._SubParsersAction) -> None:
    add_arguments(
        _command(commands, "serve", "serve the views over Arrow Flight", SERVE_HELP, _serve)
    )
    migrate = _command(commands, "migrate", "apply or inspect migrations", MIGRATE_HELP, _migrate)
    migrate.add_argument(
        "action", nargs="?", default="all", choices=["all", "pre", "post", "status", "dry-run"]
    )
    add_arguments(migrate, "migrate")
    worker = _command(commands, "ingest", "run the NATS ingest worker alone", INGEST_HELP, _ingest)
    add_arguments(worker, "ingest")
    repair = _command(
        commands,
        "reaggregate",
        "recompute aggregates from raw events",
        REAGGREGATE_HELP,
        _reaggregate,
    )
    scope = repair.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--date", type=dt.date.fromisoformat, action="append", help="a UTC day (repeatable)"
    )
    scope.add_argument("--all", action="store_true", help="every day that has raw events")
    repair.add_argument("--check", action="store_true", help="report differences, write nothing")
    add_arguments(repair, "reaggregate")
    expire = _command(
        commands, "retention", "delete expired raw events", RETENTION_HELP, _retention
    )
    add_arguments(expire, "retention")
    add_auth_command(commands)
    add_nats_credentials_command(commands)


def _command(
    commands: argparse._SubParsersAction, name: str, summary: str, description: str, handler
) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name,
        help=summary,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def _serve(args: argparse.Namespace) -> int:
    settings = build_settings(args, os.environ)
    problem = settings.exposure_problem()
    if problem:
        raise UsageError(problem)
    if settings.auth_file:
        load_auth_file(settings.auth_file)  # refused before the store or NATS start
    try:
        settings.oidc_options()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    configure_logging(settings.log_level)
    run(settings)
    return 0


def _ingest(args: argparse.Namespace) -> int:
    settings = build_settings(args, os.environ)
    if not (settings.db or "").startswith(("postgresql://", "postgres://")):
        raise UsageError(
            "`flightdeck ingest` needs --db postgresql://…: a DuckDB file is owned by the "
            "one `flightdeck serve` process, which runs the ingest worker itself"
        )
    if not settings.nats:
        raise UsageError("`flightdeck ingest` needs --nats nats://… (or NATS_URL)")
    configure_logging(settings.log_level)
    run_worker(settings)
    return 0


def _reaggregate(args: argparse.Namespace) -> int:
    settings = build_settings(args, os.environ)
    store = open_store(settings.store_options())
    try:
        migrations.apply(store, migrations.load_migrations(store.backend, settings.views_dir))
        repair = reaggregate(store, None if args.all else args.date, apply=not args.check)
    finally:
        store.close()
    days = (
        ", ".join(d.isoformat() for d in repair.days)
        if len(repair.days) <= 7
        else (f"{len(repair.days)} days, {repair.days[0]} to {repair.days[-1]}")
    )
    print(f"checked  {days or 'no day with raw events'}")
    print(
        f"{'differ ' if args.check else 'repaired'}  {repair.daily_changed} daily, "
        f"{repair.hourly_changed} hourly rows, {repair.rollup_rows} rollup rows; "
        f"removed {repair.removed} without events"
    )
    if args.date and len(repair.days) < len(set(args.date)):
        print("skipped  days without raw events (retention removed them; aggregates kept)")
    return 1 if args.check and repair.differences else 0


def _retention(args: argparse.Namespace) -> int:
    settings = build_settings(args, os.environ)
    store = open_store(settings.store_options())
    try:
        expired = retention.delete_expired(store, settings.raw_retention_days)
    finally:
        store.close()
    if expired is None:
        print("retention is off (--raw-retention-days 0): nothing deleted")
    else:
        print(f"deleted  {expired.deleted} raw events before {expired.horizon.isoformat()}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    settings = build_settings(args, os.environ)
    store = open_store(settings.store_options())
    try:
        found = migrations.load_migrations(store.backend, settings.views_dir)
        if args.action == "status":
            return _print_status(store, found)
        if args.action == "dry-run":
            return _print_plan(store, found)
        for m in migrations.apply(store, found, args.action):
            print(f"applied  {m.phase:<4}  {m.name}")
        if args.action in ("all", "pre") and (filled := fill_derived(store)):
            print(f"filled the derived dimensions of {filled} stored events")
        print(f"migrations up to date on {store.backend}")
        if args.action in ("all", "post"):
            done = install(store, load_rollups(settings.rollup_folders()))
            for name in done.backfilled:
                print(f"rollup   va_{name} installed and backfilled")
            for name in done.dropped:
                print(f"rollup   va_{name} dropped (no longer declared)")
        return 0
    finally:
        store.close()


def _print_status(store, found) -> int:
    states = migrations.status(store, found)
    for st in states:
        when = st.applied_at or ""
        print(f"{st.state:<8}  {st.migration.phase:<4}  {st.migration.name:<32}  {when}")
    pending = sum(st.state != "applied" for st in states)
    print(f"{len(states) - pending} applied, {pending} pending or changed ({store.backend})")
    return 0


def _print_plan(store, found) -> int:
    todo = migrations.plan(store, found)
    for m in todo:
        print(f"-- {m.phase}: {m.name} ({m.source})")
        for statement in m.statements(store.backend):
            print(statement.rstrip() + ";\n")
    if not todo:
        print("-- nothing to apply")
    return 0


class UsageError(Exception):
    """A command used in a way it cannot work; the message says what to do instead."""


def handle_errors(handler, args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except AuthFileError as exc:
        # An unusable auth file, like a bad flag: exit 2, one line, no traceback.
        say_failed(exc)
        return 2
    except (FlightdeckError, SettingsError, UsageError, NatsStartError, HttpStartError) as exc:
        say_failed(exc)
        return 1
    except KeyboardInterrupt:
        return 130
