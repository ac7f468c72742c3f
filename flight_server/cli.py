"""Server-side commands: `flightdeck serve` and `flightdeck migrate`."""

from __future__ import annotations

import argparse
import os
import sys

from flightdeck.views import FlightdeckError, migrations, open_store

from .serve import configure_logging, run
from .settings import add_arguments, build_settings

__all__ = ["add_commands"]

SERVE_HELP = """\
Serve the va_ views over Arrow Flight.

With no options: a DuckDB file under ./flightdeck-data, on grpc://127.0.0.1:8815.
examples:
  flightdeck serve
  flightdeck serve --db postgresql://user@localhost/analytics --port 9000
  FLIGHTDECK_DB=postgresql://… flightdeck serve --views-dir ./my_views
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
    raw = argparse.RawDescriptionHelpFormatter
    serve = commands.add_parser(
        "serve",
        help="serve the views over Arrow Flight",
        description=SERVE_HELP,
        formatter_class=raw,
    )
    add_arguments(serve)
    serve.set_defaults(handler=_serve)
    migrate = commands.add_parser(
        "migrate", help="apply or inspect migrations", description=MIGRATE_HELP, formatter_class=raw
    )
    migrate.add_argument(
        "action", nargs="?", default="all", choices=["all", "pre", "post", "status", "dry-run"]
    )
    add_arguments(migrate, network=False)
    migrate.set_defaults(handler=_migrate)


def _serve(args: argparse.Namespace) -> int:
    settings = build_settings(args, os.environ)
    configure_logging(settings.log_level)
    run(settings)
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
        print(f"migrations up to date on {store.backend}")
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


def handle_errors(handler, args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except FlightdeckError as exc:
        print(f"flightdeck: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
