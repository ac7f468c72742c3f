"""The embedded NATS's logins: generated once, private to their owner, refused if exposed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from flightdeck.flight_server.nats_auth import CREDENTIALS_FILE, NatsAuth, NatsAuthError

CLI = [sys.executable, "-m", "flightdeck.cli"]


def test_logins_are_generated_once_with_mode_0600(tmp_path):
    first = NatsAuth.ensure(tmp_path)
    assert (tmp_path / CREDENTIALS_FILE).stat().st_mode & 0o777 == 0o600
    assert NatsAuth.ensure(tmp_path) == first == NatsAuth.read(tmp_path)
    assert first.writer.password != first.internal.password
    assert len(first.writer.password) >= 32


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_file_others_can_read_is_refused_naming_file_and_mode(tmp_path, mode):
    NatsAuth.ensure(tmp_path)
    path = tmp_path / CREDENTIALS_FILE
    path.chmod(mode)
    with pytest.raises(NatsAuthError) as refused:
        NatsAuth.read(tmp_path)
    assert str(path) in str(refused.value) and f"{mode:04o}" in str(refused.value)


def test_a_damaged_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / CREDENTIALS_FILE
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(NatsAuthError) as refused:
        NatsAuth.read(tmp_path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


def test_nats_credentials_before_any_serve_says_what_to_do(tmp_path):
    done = subprocess.run(
        [*CLI, "nats-credentials", "--data-dir", "nowhere"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "flightdeck serve" in done.stderr and len(done.stderr.strip().splitlines()) == 1
