"""`flightdeck views`: the va_ views a server offers, with their columns."""

from __future__ import annotations

import argparse
import os

from .connection_flags import add_client_command, connection_from

__all__ = ["add_views_command"]

VIEWS_HELP = """\
List the va_ views the server offers (its ListFlights), each with its columns and
Arrow types, and its row count when the server reports one. Every view can be
read with `flightdeck query "SELECT … FROM va_…"`.

examples:
  flightdeck views
  flightdeck views --location grpc://analytics:8815
"""


def add_views_command(commands: argparse._SubParsersAction) -> None:
    add_client_command(commands, "views", "list the views with their columns", VIEWS_HELP, _views)


def _views(args: argparse.Namespace) -> int:
    with connection_from(args, os.environ).client() as client:
        catalog = client.views()
    for i, view in enumerate(catalog):
        rows = f"  ({view.rows:,} rows)" if view.rows is not None else ""
        print(("\n" if i else "") + view.name + rows)
        width = max((len(field.name) for field in view.schema), default=0)
        for field in view.schema:
            print(f"  {field.name:<{width}}  {field.type}")
    if not catalog:
        print("no va_ views")
    return 0
