"""`flightdeck tail VIEW`: print a view's rows live as they change."""

from __future__ import annotations

import argparse
import os
import re
import sys

from .connection_flags import add_client_command, connection_from
from .far_dates import readable

__all__ = ["add_tail_command"]

TAIL_HELP = """\
Print the rows of a live view (va_pageview_aggregate, va_pageview_hourly) as they
change: a snapshot first, then each update. Ctrl-C stops.

examples:
  flightdeck tail va_pageview_aggregate --where page_url=/products
  flightdeck tail va_pageview_hourly --where "hour>=2024-01-15T00:00:00Z" --no-snapshot
  flightdeck tail va_pageview_aggregate --columns view_count,unique_visitors --cursor 42
"""
_CONDITION = re.compile(r"^(\w+)(!=|>=|<=|=|>|<)(.*)$")


def add_tail_command(commands: argparse._SubParsersAction) -> None:
    tail = add_client_command(
        commands, "tail", "print a view's rows live as they change", TAIL_HELP, _tail
    )
    tail.add_argument("view")
    tail.add_argument(
        "--where", action="append", default=[], help="COLUMN=VALUE, or !=, >=, >, <=, <"
    )
    tail.add_argument("--columns", help="comma-separated columns to show (keys always shown)")
    tail.add_argument("--no-snapshot", action="store_true", help="only changes from now on")
    tail.add_argument("--cursor", type=int, help="resume after this cursor")


def _tail(args: argparse.Namespace) -> int:
    with (
        connection_from(args, os.environ).client() as client,
        client.subscribe(
            args.view,
            where=_where(args.where),
            columns=args.columns.split(",") if args.columns else None,
            snapshot=not args.no_snapshot,
            cursor=args.cursor,
        ) as live,
    ):
        for kind, table, cursor, detail in live:
            if table is not None:
                for row in readable(table).to_pylist():
                    print(
                        f"{kind:<8} cursor={cursor} " + " ".join(f"{k}={v}" for k, v in row.items())
                    )
            elif kind != "heartbeat":
                print(f"{kind:<8} cursor={cursor} {detail.get('reason', '')}".rstrip())
            sys.stdout.flush()
    return 0


def _where(conditions: list[str]) -> dict | None:
    where: dict = {}
    for text in conditions:
        match = _CONDITION.match(text)
        if match is None:
            raise SystemExit(
                f"flightdeck tail: --where {text!r}: use COLUMN=VALUE or COLUMN>=VALUE"
            )
        column, op, value = match.groups()
        if op == "=":
            where[column] = value
        else:
            where.setdefault(column, {})[op] = value
    return where or None
