"""The README's Python snippets run as written against a real server, on both backends.

Only the address changes: `localhost:8815` becomes the test server's port.
Files a snippet names (events.parquet, events.csv) are made in a temporary
working directory first.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as csv
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

README = Path(__file__).parents[1] / "README.md"
SECTIONS = [
    "Query it",
    "Load events (DoPut)",
    "Python client and CLI",
    "Flight SQL: notebooks, ADBC and BI tools",
]
_FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _section(title: str) -> str:
    text = README.read_text()
    start = text.find(f"\n## {title}\n")
    if start == -1:
        return ""  # test_every_section_has_snippets reports it
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _snippets() -> list[pytest.param]:
    return [
        pytest.param(title, code, id=f"{title.split(':')[0]}-{n}")
        for title in SECTIONS
        for n, code in enumerate(_FENCE.findall(_section(title)), start=1)
    ]


def test_every_section_has_snippets():
    for title in SECTIONS:
        assert _FENCE.findall(_section(title)), f"no python snippet under '## {title}'"


def _sample_events(n: int = 20) -> pa.Table:
    base = dt.datetime(2024, 1, 15, 10, 0, tzinfo=dt.UTC)
    return pa.table(
        {
            "event_id": [f"readme-{i}" for i in range(n)],
            "session_id": [f"session-{i % 5}" for i in range(n)],
            "page_url": ["/test-page" if i % 2 else "/products" for i in range(n)],
            "recorded_at": pa.array(
                [base + dt.timedelta(minutes=i) for i in range(n)], pa.timestamp("us", "UTC")
            ),
        }
    )


@pytest.fixture
def workdir(server, tmp_path, monkeypatch) -> Path:
    events = _sample_events()
    with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
        writer, meta = client.do_put(
            flight.FlightDescriptor.for_path("events", "pageview"), events.schema
        )
        writer.write_table(events)
        writer.done_writing()
        meta.read()
        writer.close()
    more = _sample_events(40).slice(20)
    pq.write_table(more, tmp_path / "events.parquet")
    csv.write_csv(more, tmp_path / "events.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.filterwarnings("ignore:Cannot disable autocommit")
@pytest.mark.parametrize(("title", "code"), _snippets())
def test_readme_snippet_runs(server, workdir, title, code, capsys):
    code = re.sub(r"(localhost|127\.0\.0\.1):8815", f"127.0.0.1:{server.port}", code)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exec(compile(code, f"README.md ({title})", "exec"), {"__name__": "__readme__"})


def test_snippets_use_dates_that_retention_keeps():
    # Issue 15, item 5: fixed 2024 dates were deleted at the next start (default
    # --raw-retention-days 90), and sending them again was refused.
    python = _FENCE.findall(README.read_text())
    fixed = [
        m for code in python for m in re.findall(r"\b20\d\d-\d\d-\d\d\b|datetime\(20\d\d", code)
    ]
    assert fixed == []
