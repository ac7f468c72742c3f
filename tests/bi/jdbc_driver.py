"""The Flight SQL JDBC driver for tests/bi: fetched by Maven once, kept under .venv/.

A fresh clone fetches it during `make test`; later runs find the jar and start at
once. xdist workers share one fetch through a file lock.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAM_DIR = Path(__file__).resolve().parent / "jdbc"
CACHE = ROOT / ".venv" / "bi" / "jdbc"
# On Java 17 Arrow's memory module reads java.nio internals.
JAVA_OPTIONS = ["--add-opens=java.base/java.nio=ALL-UNNAMED"]


def driver_jar() -> Path:
    """The driver's jar (one shaded jar: nothing else goes on the class path)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jars = sorted(CACHE.glob("flight-sql-jdbc-driver-*.jar"))
        if not jars:
            _fetch()
            jars = sorted(CACHE.glob("flight-sql-jdbc-driver-*.jar"))
    if len(jars) != 1:
        raise RuntimeError(f"expected one driver jar in {CACHE}, found {jars}")
    return jars[0]


def _fetch() -> None:
    command = [
        "mvn", "-q", "-B", "-f", str(PROGRAM_DIR / "pom.xml"),
        f"-Dmaven.repo.local={ROOT / '.venv' / 'm2'}",
        "dependency:copy-dependencies", f"-DoutputDirectory={CACHE}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"Maven could not fetch the JDBC driver:\n{done.stdout}{done.stderr}")


def java_command(jar: Path, *args: str) -> list[str]:
    """Launch FlightdeckJdbc.java from source (Java 11+ single-file launch)."""
    return ["java", *JAVA_OPTIONS, "-cp", str(jar), str(PROGRAM_DIR / "FlightdeckJdbc.java"), *args]
