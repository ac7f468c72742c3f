"""The README's LiveTable and asyncio snippets run as written against a live server (both
backends) and print what the README shows.

tests/test_readme.py runs the other sections against a server without NATS, where
nothing is live; these need the hub. Until the README carries them (section "Follow
aggregates live (DoExchange)"), the texts below are what it should show: the test
runs the README's own blocks once they are there.
"""

from __future__ import annotations

import re

import pytest

from tests.flight_server.test_live import _put
from tests.test_readme import README, matches

SECTION = "Follow aggregates live (DoExchange)"
LIVE_TABLE = """\
import flightdeck

client = flightdeck.connect("grpc://localhost:8815")
with flightdeck.LiveTable(client, "va_pageview_aggregate", columns=["view_count"]) as live:
    live.wait_ready()  # in a notebook, skip it: the cell returns at once, .table fills in
    live.on_change(lambda change: print("changed", change.upserted, change.removed))
    print(live.to_pandas().to_string(index=False))
"""
LIVE_TABLE_OUTPUT = """\
 page_url       date  view_count
/products 2024-01-15           3
  /search 2024-01-15           2
"""
ASYNC = """\
import asyncio

import flightdeck

async def follow(client):
    async for message in flightdeck.aio.subscribe(client, "va_pageview_aggregate"):
        rows = message.table.num_rows if message.table is not None else 0
        print(message.kind, rows)
        if message.kind == "snapshot_end":
            break  # leaving the loop (or cancelling the task) ends the call

with flightdeck.connect("grpc://localhost:8815") as client:
    asyncio.run(follow(client))
"""
ASYNC_OUTPUT = """\
snapshot 2
snapshot_end 0
"""


def _readme_block(marker: str, fallback: str, output: str) -> tuple[str, str]:
    """The README's python block holding `marker` and its output, else the text above."""
    text = README.read_text()
    start = text.find(f"\n## {SECTION}\n")
    section = text[start : text.find("\n## ", start + 1)] if start != -1 else ""
    blocks = re.findall(r"```python\n(.*?)```\n(?:\n```text\n(.*?)```\n)?", section, re.DOTALL)
    for code, shown in blocks:
        if marker in code:
            return code, shown
    return fallback, output


@pytest.mark.parametrize(
    ("marker", "code", "output"),
    [("LiveTable", LIVE_TABLE, LIVE_TABLE_OUTPUT), ("aio.subscribe", ASYNC, ASYNC_OUTPUT)],
    ids=["live-table", "async"],
)
def test_the_readme_live_snippet_prints_what_it_shows(
    live_server, live_client, capsys, marker, code, output
):
    _put(live_client._flight, ["/products", "/products", "/products", "/search", "/search"])
    code, output = _readme_block(marker, code, output)
    address = f"127.0.0.1:{live_server.port}"
    code = re.sub(r"(localhost|127\.0\.0\.1):8815", address, code)
    exec(compile(code, f"README.md ({SECTION})", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    assert matches(printed, output), f"README shows:\n{output}\nthe snippet printed:\n{printed}"
