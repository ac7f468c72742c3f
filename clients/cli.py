"""The `flightdeck` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable

from .errors import Error
from .load_cli import add_load_command
from .query_cli import add_query_command
from .tail import add_tail_command
from .terminal import say_failed
from .views_cli import add_views_command

__all__ = ["build_parser", "main"]

# Commands that only talk to a server. They are parsed without importing the server
# package (DuckDB, ADBC, sqlglot, NATS): a client command starts in a third of the time.
CLIENT_COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "query": add_query_command,
    "load": add_load_command,
    "views": add_views_command,
    "tail": add_tail_command,
}
SERVER_EXTRA = "pip install 'flightdeck[server]'"


class ServerNotInstalled(Exception):
    """The server commands' dependencies (the `server` extra) are not installed."""


def build_parser(*, server_commands: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flightdeck",
        description="Exact, live page-view analytics over Arrow Flight.",
        epilog="Run `flightdeck COMMAND --help` for a command's options and examples.",
    )
    if not server_commands:
        parser.epilog += f" Server commands (serve, migrate…) need: {SERVER_EXTRA}"
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if server_commands:
        _server_cli().add_commands(commands)
    for add_command in CLIENT_COMMANDS.values():
        add_command(commands)
    return parser


def _server_cli():
    try:
        from flightdeck.flight_server import cli
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("flightdeck"):
            raise  # our own module missing is a bug, not an install choice
        raise ServerNotInstalled(exc.name) from None
    return cli


def _parse(argv: list[str]) -> tuple[argparse.Namespace, bool]:
    """The arguments, and whether they name a client command (run without the server)."""
    if argv and argv[0] in CLIENT_COMMANDS:
        return build_parser(server_commands=False).parse_args(argv), True
    try:
        return build_parser().parse_args(argv), False
    except ServerNotInstalled as exc:
        if argv and not argv[0].startswith("-"):
            print(
                f"flightdeck: `flightdeck {argv[0]}` needs the server's dependencies "
                f"({exc} is not installed): {SERVER_EXTRA}",
                file=sys.stderr,
            )
            sys.exit(1)
        return build_parser(server_commands=False).parse_args(argv), True  # help, usage


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, client_only = _parse(argv)
    try:
        if client_only:
            return args.handler(args)
        return _server_cli().handle_errors(args.handler, args)
    except BrokenPipeError:
        # `flightdeck query … | head` closed the pipe: a normal end, not an error. Point
        # stdout at devnull so that Python's flush at exit does not complain again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (Error, OSError) as exc:
        # The client's errors carry the server's sentence (or the file's problem): that
        # is all a user needs, not a traceback.
        say_failed(exc)
        return 1
    except KeyboardInterrupt as exc:
        # A load says what became of its put (LoadInterrupted): never leave that unsaid.
        print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
