"""One settings table: flags, environment and README's table all come from Settings."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flightdeck.flight_server.settings import (
    COMMANDS,
    ENVIRONMENT,
    Settings,
    SettingsError,
    add_arguments,
    build_settings,
)
from flightdeck.flight_server.settings_readme import readme_table

README = Path(__file__).resolve().parents[2] / "README.md"


def _flags(command: str) -> dict[str, argparse.Action]:
    parser = argparse.ArgumentParser()
    add_arguments(parser, command)
    return {a.option_strings[0]: a for a in parser._actions if a.option_strings[0] != "-h"}


def test_readme_configuration_table_is_generated():
    text = README.read_text()
    start = text.index("| flag | environment |")
    end = text.index("\n\n", start)
    assert text[start:end].strip() == readme_table().strip(), (
        "README's configuration table is stale: replace it with the output of "
        "`python -m flightdeck.flight_server.settings_readme`"
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_names_its_environment_variable(command):
    for flag, action in _flags(command).items():
        name = flag.removeprefix("--").replace("-", "_")
        assert f"[env {ENVIRONMENT[name]}]" in action.help, flag


def test_every_setting_with_a_variable_is_a_flag_somewhere():
    every = set().union(*(_flags(c) for c in COMMANDS))
    assert {f"--{name.replace('_', '-')}" for name in ENVIRONMENT} == every


def test_commands_take_only_their_flags():
    assert "--port" not in _flags("migrate") and "--nats" not in _flags("retention")
    assert "--raw-retention-days" in _flags("retention") and "--nats" in _flags("ingest")
    assert set(_flags("nats-credentials")) == {"--data-dir"}


def test_flag_help_shows_the_default_from_settings():
    assert "(default: 8815)" in _flags("serve")["--port"].help
    assert "(default: 300.0 s)" in _flags("serve")["--query-timeout"].help


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--port", "eighty"], {}, "--port"),
        ([], {"FLIGHTDECK_PORT": "eighty"}, "FLIGHTDECK_PORT"),
        ([], {"FLIGHTDECK_QUERY_TIMEOUT": "soon"}, "FLIGHTDECK_QUERY_TIMEOUT"),
        ([], {"FLIGHTDECK_INSECURE": "maybe"}, "FLIGHTDECK_INSECURE"),
        (["--max-queries", "-3"], {}, "--max-queries"),
    ],
)
def test_a_bad_value_names_where_it_came_from(argv, env, named):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SettingsError, match=re.escape(named)):
        build_settings(parser.parse_args(argv), env)


def test_booleans_read_from_the_environment():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert build_settings(parser.parse_args([]), {"FLIGHTDECK_INSECURE": "yes"}).insecure
    assert not build_settings(parser.parse_args([]), {"FLIGHTDECK_INSECURE": "0"}).insecure
    assert build_settings(parser.parse_args(["--insecure"]), {}).insecure


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["serve", "--port", "eighty"], {}, "--port"),
        (["serve"], {"FLIGHTDECK_PORT": "eighty"}, "FLIGHTDECK_PORT"),
        (["retention"], {"FLIGHTDECK_RAW_RETENTION_DAYS": "a month"}, "RAW_RETENTION_DAYS"),
    ],
)
@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_the_cli_answers_a_bad_value_in_one_line(tmp_path, argv, env, named):
    run = subprocess.run(
        [sys.executable, "-m", "flightdeck.cli", *argv, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("flightdeck: ") and named in line


def test_settings_build_the_worker_and_store_options():
    s = Settings(ingest_batch=7, max_message_mb=2.0, query_timeout=3.0)
    options = s.worker_options()
    assert (options.batch, options.max_message_bytes) == (7, 2 * 1024 * 1024)
    assert s.store_options().statement_timeout_s == 3.0


def test_ingest_help_does_not_promise_an_embedded_nats():
    """`flightdeck ingest` refuses to run without --nats, so its help must say so
    rather than offer the embedded server `serve` starts."""
    text = _flags("ingest")["--nats"].help
    assert "`ingest` needs it" in text and "`serve` starts an embedded" in text
