"""`flightdeck load FILE`: send a Parquet or CSV file of page-view events as one load."""

from __future__ import annotations

import argparse
import os

from .connection_flags import add_client_command, connection_from
from .load import LoadResult

__all__ = ["add_load_command", "summary"]

LOAD_HELP = """\
Load page-view events from a Parquet (.parquet, .pq) or CSV (.csv) file as one
DoPut: every row is committed or none. Columns: session_id, page_url and
recorded_at (or timestamp) are required; event_id, user_id, referrer,
user_agent, duration_s and properties are optional; others are ignored. Rows
already loaded (same event_id, or same content without one) count as duplicates.
A progress bar goes to stderr; the summary to stdout.

examples:
  flightdeck load events.parquet
  flightdeck load events.csv --batch-rows 20000 --no-progress
  flightdeck load events.parquet --location grpc://analytics:8815
"""


def add_load_command(commands: argparse._SubParsersAction) -> None:
    load = add_client_command(
        commands, "load", "load events from a Parquet or CSV file", LOAD_HELP, _load
    )
    load.add_argument("file", help="a .parquet, .pq or .csv file of page-view events")
    load.add_argument(
        "--batch-rows", type=_positive, default=65_536, metavar="N", help="default: 65536"
    )
    load.add_argument("--no-progress", action="store_true", help="no progress bar")


def _load(args: argparse.Namespace) -> int:
    with connection_from(args, os.environ).client() as client:
        result = client.load(args.file, progress=not args.no_progress, batch_rows=args.batch_rows)
    print(summary(result))
    return 0


def summary(result: LoadResult) -> str:
    return (
        f"loaded {result.rows:,} rows: {result.accepted:,} accepted, "
        f"{result.duplicates:,} duplicates in {result.seconds:.1f} s "
        f"({result.rows_per_second:,.0f} rows/s)"
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
