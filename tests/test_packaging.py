"""pyproject.toml is read by setuptools without deprecation warnings.

pip runs the build backend twice on every install (`make serve`, `make test`), so a
deprecated field prints its warning block twice to every newcomer.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def test_pyproject_reads_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), PYPROJECT)
    assert dist.metadata.license_expression == "Apache-2.0"
