"""The README's Python snippets run as written against a real server, on both backends,
and print what the README says they print.

Only the address changes: `localhost:8815` becomes the test server's port.
Files a snippet names (events.parquet, events.csv) are made in a temporary
working directory first; the store holds 20 events before each snippet runs.

A ```text block right after a ```python block is that snippet's output, compared
line by line. In it, `…` stands for what legitimately varies from run to run
(a duration, a backend's schema name): within a line it matches any text, and a
line that is only `…` matches any number of lines. A snippet with no such block
must print nothing, and every table, frame or list it leaves behind must hold rows.
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
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.ingest.rollup_install import install
from flightdeck.views.rollup_spec import BUILTIN_DIR, load_rollups
from pandas import DataFrame

README = Path(__file__).parents[1] / "README.md"
SECTIONS = [
    "Query it",
    "Load events (DoPut)",
    "Python client and CLI",
    "Events of any type, and declared rollups",
    "Flight SQL: notebooks, ADBC and BI tools",
]
_FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)
# A python block, and the text block that shows its output when one follows it.
_SNIPPET = re.compile(r"```python\n(.*?)```\n(?:\n```text\n(.*?)```\n)?", re.DOTALL)
ELIDED = "…"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.find(f"\n## {title}\n")
    if start == -1:
        return ""  # test_every_section_has_snippets reports it
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _snippets() -> list[pytest.param]:
    return [
        pytest.param(title, code, expected, id=f"{title.split(':')[0]}-{n}")
        for title in SECTIONS
        for n, (code, expected) in enumerate(_SNIPPET.findall(_section(title)), start=1)
    ]


def _line_pattern(line: str) -> str:
    return ".*".join(re.escape(part) for part in line.split(ELIDED))


def _output_pattern(expected: str) -> re.Pattern[str]:
    """`expected` as a pattern over whole output lines, `…` elisions included."""
    parts = [
        r"(?:[^\n]*\n)*?" if line == ELIDED else _line_pattern(line) + r"\n"
        for line in expected.splitlines()
    ]
    return re.compile("".join(parts))


def matches(output: str, expected: str) -> bool:
    return _output_pattern(expected).fullmatch(output) is not None


@pytest.mark.parametrize(
    ("output", "expected", "same"),
    [
        ("3 0 1,234 rows/s\n", "3 0 … rows/s\n", True),
        ("3 1 1,234 rows/s\n", "3 0 … rows/s\n", False),
        ("a\nb\nc\nd\n", "a\n…\nd\n", True),
        ("a\nd\n", "a\n…\nd\n", True),
        ("a\nb\nc\n", "a\n…\nd\n", False),
        ("a\nb\n", "a\n", False),
        ("", "a\n", False),
    ],
    ids=["in-line", "in-line-differs", "lines", "no-lines", "last-differs", "extra", "empty"],
)
def test_elisions_match_only_what_they_stand_for(output, expected, same):
    assert matches(output, expected) is same


def _has_rows(value) -> bool | None:
    """Whether a result the snippet left behind holds rows; None for other values."""
    if isinstance(value, (pa.Table, DataFrame, list)):
        return len(value) > 0
    if type(value).__name__ == "DataFrame" and hasattr(value, "height"):  # Polars, optional
        return value.height > 0
    return None


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
def server(store, tmp_path):
    """The README's server keeps the built-in rollups, as `flightdeck serve` does."""
    install(store, load_rollups([BUILTIN_DIR]))
    srv = FlightdeckServer(Settings(port=0, data_dir=tmp_path), store)
    yield srv
    srv.shutdown()


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
    # 10,000 rows, 10 of them already loaded: what the DoPut example prints.
    more = _sample_events(10_010).slice(10)
    pq.write_table(more, tmp_path / "events.parquet")
    csv.write_csv(more, tmp_path / "events.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.filterwarnings("ignore:Cannot disable autocommit")
@pytest.mark.parametrize(("title", "code", "expected"), _snippets())
@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_readme_snippet_prints_what_the_readme_shows(
    server, workdir, title, code, expected, capsys
):
    address = f"127.0.0.1:{server.port}"
    code = re.sub(r"(localhost|127\.0\.0\.1):8815", address, code)
    namespace = {"__name__": "__readme__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exec(compile(code, f"README.md ({title})", "exec"), namespace)
    output = capsys.readouterr().out
    output = output.replace(address, "localhost:8815").replace(f"{workdir}/", "")
    if expected:
        assert matches(output, expected), (
            f"README shows:\n{expected}\nthe snippet printed:\n{output}"
        )
    else:
        assert output == "", f"prints this, which the README does not show:\n{output}"
        empty = [name for name, value in namespace.items() if _has_rows(value) is False]
        assert empty == [], f"the snippet's results hold no rows: {empty}"


def test_snippets_use_dates_that_retention_keeps():
    # Issue 15, item 5: fixed 2024 dates were deleted at the next start (default
    # --raw-retention-days 90), and sending them again was refused.
    python = _FENCE.findall(README.read_text())
    fixed = [
        m for code in python for m in re.findall(r"\b20\d\d-\d\d-\d\d\b|datetime\(20\d\d", code)
    ]
    assert fixed == []
