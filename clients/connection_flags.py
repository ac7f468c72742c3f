"""The flags every client command shares (--location, --token), with their environment.

The environment is read here, at the command line's edge, once; the client
itself only takes what it is given.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .client import DEFAULT_LOCATION, Client

__all__ = [
    "ENVIRONMENT",
    "Connection",
    "add_client_command",
    "add_connection_arguments",
    "connection_from",
]

ENVIRONMENT = {"location": "FLIGHTDECK_URL", "token": "FLIGHTDECK_TOKEN"}


@dataclass(frozen=True)
class Connection:
    location: str = DEFAULT_LOCATION
    token: str | None = None

    def client(self) -> Client:
        return Client(self.location, token=self.token)


def add_client_command(
    commands: argparse._SubParsersAction,
    name: str,
    summary: str,
    description: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """A subcommand that talks to a server: its help text as written, --location and --token
    (listed after the command's own options), and `handler` to run it."""
    parser = commands.add_parser(
        name,
        help=summary,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_arguments(parser.add_argument_group("server"))
    parser.set_defaults(handler=handler)
    return parser


def add_connection_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    # Defaults are None so that the environment can fill in what a flag left out.
    parser.add_argument(
        "--location",
        metavar="URI",
        help=f"the flightdeck server (env {ENVIRONMENT['location']}; default {DEFAULT_LOCATION})",
    )
    parser.add_argument(
        "--token",
        help=f"bearer token sent with every call (env {ENVIRONMENT['token']}, which keeps it "
        "out of your shell history and `ps`)",
    )


def connection_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Connection:
    """Flags over environment over defaults."""
    return Connection(
        location=args.location or environ.get(ENVIRONMENT["location"]) or DEFAULT_LOCATION,
        token=args.token or environ.get(ENVIRONMENT["token"]) or None,
    )
