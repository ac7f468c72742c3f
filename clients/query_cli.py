"""`flightdeck query "SQL"`: run one query and print or save the result."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from .connection_flags import add_client_command, connection_from
from .interruptible import interruptible
from .output import FORMATS, write_csv, write_json_lines, write_parquet, write_table_text

__all__ = ["add_query_command"]

QUERY_HELP = """\
Run one read-only SELECT/WITH over the va_ views and print the result: an aligned
text table by default; csv, json (JSON Lines: one object per row) or parquet
(needs --output) for other tools. Errors print the server's reason and exit 1.

examples:
  flightdeck query "SELECT page_url, view_count FROM va_pageview_aggregate ORDER BY 2 DESC LIMIT 10"
  flightdeck query "SELECT * FROM va_pageview_event" --format parquet --output events.parquet
  flightdeck query "SELECT * FROM va_pageview_hourly" --format json | jq .view_count
  FLIGHTDECK_URL=grpc://analytics:8815 flightdeck query "SELECT count(*) FROM va_pageview_event"
"""


def add_query_command(commands: argparse._SubParsersAction) -> None:
    query = add_client_command(
        commands, "query", "run a SQL query over the views and print the result", QUERY_HELP, _query
    )
    query.add_argument("sql", help="one SELECT or WITH query over va_ views")
    query.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    query.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")


def _query(args: argparse.Namespace) -> int:
    if args.format == "parquet" and not args.output:
        raise SystemExit("flightdeck query: --format parquet writes a file: add --output FILE")
    with connection_from(args, os.environ).client() as client:
        _interruptible(client, lambda: _run(client, args))
    return 0


def _run(client, args: argparse.Namespace) -> None:
    reader = client.query_reader(args.sql)
    if args.output:
        rows = _write_file(reader, args.format, args.output)
        print(f"wrote {rows:,} rows to {args.output}", file=sys.stderr)
    else:
        _write_stdout(reader, args.format)


def _interruptible(client, work) -> None:
    """Run `work` so that Ctrl-C stops the query at once, not when the result comes."""
    try:
        interruptible(work)
    except KeyboardInterrupt:
        client.cancel()
        # Leave at once: the worker may still be inside a call that cannot be cancelled
        # (GetFlightInfo), and Python's normal exit under a live pyarrow call can abort
        # the process. The server sees the connection go.
        with contextlib.suppress(OSError):
            sys.stdout.flush()
        print("interrupted: the query was cancelled", file=sys.stderr, flush=True)
        os._exit(130)


def _write_file(reader, fmt: str, path: str) -> int:
    if fmt == "parquet":
        return write_parquet(reader, path)
    if fmt == "csv":
        with open(path, "wb") as out:
            return write_csv(reader, out)
    with open(path, "w", encoding="utf-8") as out:
        return write_json_lines(reader, out) if fmt == "json" else write_table_text(reader, out)


def _write_stdout(reader, fmt: str) -> None:
    if fmt == "csv":
        sys.stdout.flush()
        write_csv(reader, sys.stdout.buffer)
    elif fmt == "json":
        write_json_lines(reader, sys.stdout)
    else:
        write_table_text(reader, sys.stdout)
    sys.stdout.flush()
