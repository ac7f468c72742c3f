"""The typed base error belongs to no layer: auth and ingest's errors import no storage."""

from __future__ import annotations

import ast
from pathlib import Path

import flightdeck.views
from flightdeck.base_error import FlightdeckError
from flightdeck.ingest import InvalidBatch
from flightdeck.views import BackendError

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_the_base_error_is_outside_the_storage_layer():
    assert FlightdeckError.__module__ == "flightdeck.base_error"
    assert "FlightdeckError" not in flightdeck.views.__all__
    assert issubclass(BackendError, FlightdeckError) and issubclass(InvalidBatch, FlightdeckError)


def test_auth_and_ingest_errors_do_not_import_storage():
    modules = [ROOT / "ingest" / "errors.py", ROOT / "flight_server" / "nats_auth.py"]
    modules += sorted((ROOT / "flight_server" / "auth").glob("*.py"))
    for path in modules:
        assert not any(m.startswith("flightdeck.views") for m in _imports(path)), path
