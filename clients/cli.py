"""The `flightdeck` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    from flightdeck.flight_server import cli as server_cli

    from .tail import add_tail_command

    parser = argparse.ArgumentParser(
        prog="flightdeck",
        description="Exact, live page-view analytics over Arrow Flight.",
        epilog="Run `flightdeck COMMAND --help` for a command's options and examples.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server_cli.add_commands(commands)
    add_tail_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from flightdeck.flight_server.cli import handle_errors

    args = build_parser().parse_args(argv)
    return handle_errors(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
