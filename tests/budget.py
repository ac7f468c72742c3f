"""How many generated examples a property test runs.

`make test` selects the slow tests too and runs every property test in full. A
bare `pytest` is the quick check during work (it must stay within 5 minutes on a
2-core machine), so there each runs a quarter of its examples. Which run this
is, conftest's `pytest_configure` says before any test module is imported.
"""

from __future__ import annotations

_thorough = False


def run_everything(thorough: bool) -> None:
    global _thorough
    _thorough = thorough


def examples(full: int) -> int:
    return full if _thorough else max(10, full // 4)
