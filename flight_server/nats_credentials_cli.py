"""`flightdeck nats-credentials`: the login a producer needs for the embedded nats-server."""

from __future__ import annotations

import argparse
import os

from .nats_address import read_url
from .nats_auth import ROLES, NatsAuth, NatsAuthError
from .settings import add_arguments, build_settings

__all__ = ["add_nats_credentials_command"]

NATS_CREDENTIALS_HELP = """\
Print a login of the embedded nats-server that `flightdeck serve` runs when
started without --nats, as NATS_USER and NATS_PASSWORD lines (the variables
the `nats` CLI reads), and the server's address as NATS_URL (from the file
DATA_DIR/nats/url, written at each start; the port stays the same across
restarts unless another process took it). The writer may publish to events.<type> and nothing
else (not the dead-letter subjects, not the update log, not the JetStream
API); `--role flightdeck` prints the server's own login, which may do
anything.

examples:
  flightdeck nats-credentials --data-dir ./flightdeck-data
  eval "$(flightdeck nats-credentials)" && nats pub -s "$NATS_URL" \\
      --user "$NATS_USER" --password "$NATS_PASSWORD" events.pageview '{"session_id": …}'
"""


def add_nats_credentials_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "nats-credentials",
        help="print the embedded NATS login for event producers",
        description=NATS_CREDENTIALS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser, "nats-credentials")
    parser.add_argument(
        "--role", choices=ROLES, default="writer", help="whose login (default writer)"
    )
    parser.set_defaults(handler=_print_credentials)


def _print_credentials(args: argparse.Namespace) -> int:
    data_dir = build_settings(args, os.environ).data_dir
    auth = NatsAuth.read(data_dir / "nats")
    if auth is None:
        raise NatsAuthError(
            f"no embedded NATS credentials under {data_dir}: they are made the first time "
            "`flightdeck serve` runs there without --nats"
        )
    login = auth.login(args.role)
    print(f"NATS_USER={login.user}")
    print(f"NATS_PASSWORD={login.password}")
    url = read_url(data_dir / "nats")
    if url is not None:  # None until serve has started the embedded NATS once
        print(f"NATS_URL={url}")
    return 0
