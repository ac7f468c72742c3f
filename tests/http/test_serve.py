"""`flightdeck serve` with its HTTP face, as a user runs it, and README's curl snippet."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.flight as flight
import pytest

from tests.doput import put_events
from tests.seed import events

# Real serve processes: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "flightdeck.cli"]

README = Path(__file__).parents[2] / "README.md"


def _readme_snippet() -> str:
    """The README's curl block, as the README shows it (the test puts its own port in)."""
    text = README.read_text()
    section = text[text.index("\n## HTTP: curl") :]
    return re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(tmp_path, *flags: str) -> Iterator[tuple[subprocess.Popen, dict[str, str]]]:
    """A `serve` process, and the locations its log announced."""
    args = [*CLI, "serve", "--port", "0", "--data-dir", "data", *flags]
    proc = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        said: dict[str, str] = {}
        for line in proc.stderr:
            if found := re.search(r"(http )?location=(\S+)", line):
                said["http" if found.group(1) else "flight"] = found.group(2)
            if "serving location=" in line:
                break
        yield proc, said
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_readme_curl_snippet(tmp_path):
    port = _free_port()
    with _serve(tmp_path, "--http-port", str(port)) as (proc, said):
        assert said["http"] == f"http://127.0.0.1:{port}"
        with flight.connect(said["flight"]) as client:
            put_events(client, events(40))
        script = _readme_snippet().replace(":8816", f":{port}")
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        # curl --max-time ends the live stream: exit 28 after the events it printed.
        lines = out.stdout.splitlines()
        assert lines[:4] == [
            '"page_url","view_count"',
            '"/page/0",2',
            '"/page/1",2',
            '"/page/2",2',
        ], out.stdout
        assert "event: snapshot_end" in out.stdout
        assert re.search(r'event: snapshot\nid: \ndata: \{"type": "snapshot"', out.stdout)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0  # the face stops with the server, cleanly


def test_http_port_0_turns_the_face_off(tmp_path):
    with _serve(tmp_path, "--http-port", "0") as (_, said):
        assert "flight" in said and "http" not in said


def test_a_taken_port_fails_the_start_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [*CLI, "serve", "--port", "0", "--data-dir", "data", "--http-port", str(port)]
        run = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_bad_http_port_is_a_usage_error(tmp_path):
    run = subprocess.run(
        [*CLI, "serve", "--data-dir", "data", "--http-port", "8816x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0 and "http" in run.stderr.lower()
