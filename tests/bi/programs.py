"""Build the BI client programs in other languages once per test session, cached.

Each toolchain keeps its downloads and build cache inside the virtualenv that runs
the tests (`.venv/go`, `.venv/cargo`, `.venv/rust-target`), never in ~, so a fresh
clone fetches and builds on its own in `make test` and a second run only relinks.
A file lock keeps two xdist workers from building the same program at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["BI_DIR", "build", "cache_dir", "run_json", "tool"]

BI_DIR = Path(__file__).parent
# Where this machine kind installs the toolchains, for a PATH that lacks them.
_INSTALLED = [Path("/usr/local/go/bin"), Path.home() / ".cargo" / "bin"]


def tool(name: str) -> str:
    """The path of toolchain command `name` (go, cargo)."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(map(str, _INSTALLED)))
    if found is None:
        raise RuntimeError(f"{name} is not installed: the BI client tests need Go and Rust")
    return found


def cache_dir(name: str) -> Path:
    """A folder for one toolchain's caches, inside the virtualenv."""
    folder = Path(sys.prefix) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def build(command: list[str], cwd: Path, env: dict[str, str], timeout_s: float = 900) -> None:
    """Run a build command under a lock; a failure shows the toolchain's own output."""
    with open(cache_dir("bi-build") / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            command,
            cwd=cwd,
            # The toolchain's own folder first: cargo runs the rustc beside it.
            env={**os.environ, **env, "PATH": _path_with(Path(command[0]).parent)},
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def _path_with(folder: Path) -> str:
    return os.pathsep.join([str(folder), os.environ.get("PATH", "")])


def run_json(command: list[str], timeout_s: float = 120) -> dict:
    """Run a built program; what it printed, parsed as one JSON object."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)
