"""The README's LiveTable and asyncio snippets run as written against a live server (both
backends) and print what the README shows.

tests/test_readme.py runs the other sections against a server without NATS, where
nothing is live; these need the hub.
"""

from __future__ import annotations

import re

import pytest

from tests.flight_server.test_live import _put
from tests.test_readme import README, matches

# A live server per snippet: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

SECTION = "Live: any view, any filter, top-N (DoExchange)"


def _readme_block(marker: str) -> tuple[str, str]:
    """The README's python block holding `marker` and the output it shows."""
    text = README.read_text()
    start = text.find(f"\n## {SECTION}\n")
    section = text[start : text.find("\n## ", start + 1)] if start != -1 else ""
    blocks = re.findall(r"```python\n(.*?)```\n(?:\n```text\n(.*?)```\n)?", section, re.DOTALL)
    for code, shown in blocks:
        if marker in code:
            return code, shown
    raise AssertionError(f"README section {SECTION!r} has no block using {marker}")


@pytest.mark.parametrize("marker", ["LiveTable", "aio.subscribe"], ids=["live-table", "async"])
def test_the_readme_live_snippet_prints_what_it_shows(live_server, live_client, capsys, marker):
    _put(live_client._flight, ["/products", "/products", "/products", "/search", "/search"])
    code, output = _readme_block(marker)
    address = f"127.0.0.1:{live_server.port}"
    code = re.sub(r"(localhost|127\.0\.0\.1):8815", address, code)
    exec(compile(code, f"README.md ({SECTION})", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    assert matches(printed, output), f"README shows:\n{output}\nthe snippet printed:\n{printed}"
