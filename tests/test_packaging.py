"""pyproject.toml is read by setuptools without deprecation warnings.

pip runs the build backend twice on every install (`make serve`, `make test`), so a
deprecated field prints its warning block twice to every newcomer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"
_NOT_SOURCE = (".git", ".venv", "build", "*.egg-info", "__pycache__", "flightdeck-data", "out")


def test_pyproject_reads_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), PYPROJECT)
    assert dist.metadata.license_expression == "Apache-2.0"


def test_the_wheel_builds_quietly_and_carries_the_sql_files(tmp_path):
    """What `make serve` prints while installing: no warning block from the build, and
    the migrations and view files are in the package (they are data, not modules)."""
    # A copy, so setuptools' build/ folder is not left in the working tree.
    source = tmp_path / "source"
    shutil.copytree(PYPROJECT.parent, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
         "--no-build-isolation", "-w", str(tmp_path / "wheel"), "-v"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert "Warning" not in built.stdout + built.stderr, built.stdout + built.stderr
    (wheel,) = (tmp_path / "wheel").glob("flightdeck-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "flightdeck/views/sql/pre/001_pageview_event.sql" in names
    assert "flightdeck/views/sql/post/va_pageview_aggregate.sql" in names
    # The dashboard's files (GET /), served from the installed package.
    for asset in ("index.html", "app.js", "live.js", "chart.js", "format.js", "style.css"):
        assert f"flightdeck/flight_server/http/static/{asset}" in names
