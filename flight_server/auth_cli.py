"""`flightdeck auth …`: manage the auth file's users and tokens."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from .auth import ROLES, add_token, add_user, remove
from .auth.file import read_entries

__all__ = ["add_auth_command"]

AUTH_HELP = """\
Manage users and bearer tokens in the auth file that `flightdeck serve --auth-file`
reads. Passwords and tokens are stored hashed; the file also holds the key that
signs session tokens, so it is written with mode 0600 and serve refuses it if
group or others may read it. A running server picks up changes by itself.
Roles: reader (queries, catalog, live), writer (+ DoPut and Flight SQL ingest),
admin (+ the reaggregate and retention actions).

examples:
  flightdeck auth add-user alice --role admin --password-stdin --auth-file auth.toml <pw.txt
  flightdeck auth add-token loader --role writer --auth-file auth.toml   # prints the token once
  flightdeck auth list --auth-file auth.toml
  flightdeck auth remove loader --auth-file auth.toml
"""


def add_auth_command(commands: argparse._SubParsersAction) -> None:
    auth = commands.add_parser(
        "auth",
        help="manage users and tokens of the auth file",
        description=AUTH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = auth.add_subparsers(dest="auth_command", required=True, metavar="ACTION")
    user = actions.add_parser("add-user", help="add or replace a user (basic auth, JDBC/ODBC)")
    user.add_argument("name")
    user.add_argument("--role", choices=ROLES, required=True)
    user.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    token = actions.add_parser("add-token", help="issue a bearer token (printed once)")
    token.add_argument("name")
    token.add_argument("--role", choices=ROLES, required=True)
    listing = actions.add_parser("list", help="users and tokens with their roles (no secrets)")
    drop = actions.add_parser("remove", help="remove a user and every token of that name")
    drop.add_argument("name")
    for parser in (user, token, listing, drop):
        parser.add_argument(
            "--auth-file",
            type=Path,
            default=os.environ.get("FLIGHTDECK_AUTH_FILE"),
            required="FLIGHTDECK_AUTH_FILE" not in os.environ,
            help="the auth file [env FLIGHTDECK_AUTH_FILE]",
        )
    auth.set_defaults(handler=_auth)


def _auth(args: argparse.Namespace) -> int:
    path = Path(args.auth_file)
    if args.auth_command == "add-user":
        add_user(path, args.name, args.role, _password(args.password_stdin))
        print(f"user {args.name} ({args.role}) saved in {path}")
    elif args.auth_command == "add-token":
        print(add_token(path, args.name, args.role))
        print(f"token for {args.name} ({args.role}) saved hashed in {path}", file=sys.stderr)
    elif args.auth_command == "remove":
        print(f"removed {remove(path, args.name)} entries named {args.name}")
    else:
        _list(path)
    return 0


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("flightdeck auth: the passwords differ")
    return first


def _list(path: Path) -> None:
    data = read_entries(path) if path.exists() else {}
    for name, user in sorted(data.get("users", {}).items()):
        print(f"user   {name:<20} {user['role']}")
    for token in data.get("tokens", []):
        print(f"token  {token['name']:<20} {token['role']}  sha256:{token['sha256'][:12]}…")
