"""Every fault test starts and kills real processes: they are `slow`.

`make test` (and CI) runs them; a bare `pytest` skips them, to keep the
everyday loop short.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)
