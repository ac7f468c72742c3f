"""The Arrow Flight SQL JDBC driver, as DBeaver, DataGrip and Tableau load it, on both backends.

One run of tests/bi/jdbc/FlightdeckJdbc.java per backend does what a BI tool does on
connect and on use, over TLS with a user name and password; each of its JSON lines is
held against a fresh ADBC query of the same server. Slow: Maven fetches the driver
once (cached under .venv/), and a JVM start costs seconds.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pytest
import trustme
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.auth import add_user
from flightdeck.views import Store, StoreOptions, migrations, open_store

from tests.bi.jdbc_driver import driver_jar, java_command
from tests.conftest import insert

pytestmark = pytest.mark.slow

USER, PASSWORD = "bi-reader", "bi-pw"
# Runs for minutes on either backend unless stopped; nothing arrives until it ends.
LONG_SQL = {
    "duckdb": "SELECT max(a.g + b.g) AS m FROM generate_series(1, 400000) AS a(g), "
    "generate_series(1, 400000) AS b(g)",
    "postgresql": "SELECT max(a.g + b.g) AS m FROM generate_series(1, 25000) AS a(g), "
    "generate_series(1, 25000) AS b(g)",
}
# The store stops what JDBC left running (cancel that stops the backend is issue 21 (b)).
STORE_TIMEOUT_S = 8.0
EVENTS = pa.table(
    {
        "event_id": ["a1", "a2", "a3", "b1", "b2"],
        "session_id": ["s1", "s1", "s2", "s3", "s3"],
        "page_url": ["/a", "/a", "/a", "/b", "/b"],
        "recorded_at": pa.array(
            ["2024-01-15T10:00:00Z", "2024-01-15T10:01:00Z", "2024-01-16T09:00:00Z",
             "2024-01-14T23:00:00Z", "2024-01-17T00:00:00Z"],
        ).cast(pa.timestamp("us", "UTC")),
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def jar() -> Path:
    return driver_jar()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bi-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


@pytest.fixture
def bi_store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    options = StoreOptions(db=db_url, data_dir=tmp_path, statement_timeout_s=STORE_TIMEOUT_S)
    store = open_store(options)
    migrations.apply(store, migrations.load_migrations(store.backend))
    insert(store, "tb_pageview_event", EVENTS)
    yield store
    store.close()


@pytest.fixture
def served(bi_store: Store, tmp_path: Path, certificates) -> Iterator[int]:
    """A server a BI tool would meet: TLS, and users in an --auth-file."""
    auth_file = tmp_path / "auth.toml"
    add_user(auth_file, USER, "reader", PASSWORD)
    settings = Settings(
        port=0,
        data_dir=tmp_path,
        auth_file=auth_file,
        tls_cert=certificates["cert"],
        tls_key=certificates["key"],
        query_timeout=STORE_TIMEOUT_S,
    )
    server = FlightdeckServer(settings, bi_store)
    yield server.port
    server.shutdown()


@pytest.fixture
def report(jar, served, backend, certificates) -> dict[str, dict]:
    """Each check of one run of the JDBC program, by name."""
    args = ["127.0.0.1", str(served), USER, PASSWORD, str(certificates["ca"]), LONG_SQL[backend]]
    done = subprocess.run(
        java_command(jar, *args), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {line.pop("check"): line for line in lines}


def _adbc(port: int, certificates) -> flightsql.Connection:
    return flightsql.connect(
        f"grpc+tls://127.0.0.1:{port}",
        db_kwargs={
            "username": USER,
            "password": PASSWORD,
            "adbc.flight.sql.client_option.tls_root_certs": certificates["ca"].read_text(),
        },
        autocommit=True,
    )


def test_jdbc_connects_reads_metadata_and_queries(report, served, certificates, backend):
    with _adbc(served, certificates) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT * FROM va_pageview_event LIMIT 0")
        columns = cursor.fetch_arrow_table().schema.names
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    print(json.dumps(report, indent=1))
    for name, check in report.items():
        assert "error" not in check, (name, check)
