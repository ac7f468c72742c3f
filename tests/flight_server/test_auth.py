"""Authentication, roles, TLS and limits against a real server, on both backends.

Every RPC is tried without credentials and with too small a role.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
import tomllib
import warnings
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import trustme
from flightdeck.flight_server import FlightdeckServer, Settings
from flightdeck.flight_server.auth import Authenticator, add_token, add_user, remove
from flightdeck.flight_server.auth.file import AuthFileError

# A migrated store's views: va_event and the three page-view views.
VIEWS = 4

# Failed logins a user name may make before the next is refused without a scrypt.
LOGIN_ATTEMPTS = 5

EVENTS = flight.FlightDescriptor.for_path("events", "pageview")
SQL = flight.FlightDescriptor.for_command(b"SELECT 1 AS one")


def _events(n: int = 3, prefix: str = "e") -> pa.Table:
    return pa.table(
        {
            "event_id": [f"{prefix}{i}" for i in range(n)],
            "session_id": ["s"] * n,
            "page_url": ["/a"] * n,
            "recorded_at": [f"2024-01-15T10:0{i}:00Z" for i in range(n)],
        }
    )


@pytest.fixture
def auth_file(tmp_path) -> Path:
    path = tmp_path / "auth.toml"
    add_user(path, "alice", "admin", "alice-pw")
    add_user(path, "rita", "reader", "rita-pw")
    return path


@pytest.fixture
def tokens(auth_file) -> dict[str, str]:
    return {
        role: add_token(auth_file, f"{role}-bot", role) for role in ("reader", "writer", "admin")
    }


@pytest.fixture
def secured(store, tmp_path, auth_file):
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path, auth_file=auth_file), store)
    yield f"grpc://127.0.0.1:{server.port}"
    server.shutdown()


def _as(token: str | None) -> flight.FlightCallOptions:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return flight.FlightCallOptions(headers=headers)


def _put(client, options, table=None) -> dict:
    table = table if table is not None else _events()
    writer, meta = client.do_put(EVENTS, table.schema, options)
    writer.write_table(table)
    writer.done_writing()
    reply = meta.read()
    writer.close()
    return json.loads(reply.to_pybytes())


def _exchange(client, options) -> None:
    descriptor = flight.FlightDescriptor.for_command(b'{"subscribe": "va_pageview_aggregate"}')
    writer, reader = client.do_exchange(descriptor, options)
    try:
        reader.read_chunk()
    finally:
        writer.close()


class _SilentHandshake(flight.ClientAuthHandler):
    """A Handshake that carries only what the call options carry."""

    def authenticate(self, outgoing, incoming) -> None:
        outgoing.write(b"")
        incoming.read()

    def get_token(self) -> bytes:
        return b""


# Every RPC, as a call that needs only the given role.
READER_CALLS = {
    "ListFlights": lambda c, o: list(c.list_flights(options=o)),
    "GetFlightInfo": lambda c, o: c.get_flight_info(SQL, o),
    "GetSchema": lambda c, o: c.get_schema(SQL, o),
    "DoGet": lambda c, o: c.do_get(flight.Ticket(b"va_pageview_hourly"), o).read_all(),
    "ListActions": lambda c, o: list(c.list_actions(o)),
    "DoAction": lambda c, o: list(c.do_action(flight.Action("ClosePreparedStatement", b""), o)),
    "DoExchange": _exchange,
}


@pytest.mark.parametrize("rpc", [*READER_CALLS, "DoPut", "Handshake"])
@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_every_rpc_without_credentials_is_unauthenticated(secured, rpc):
    calls = {
        **READER_CALLS,
        "DoPut": lambda c, o: _put(c, o),
        "Handshake": lambda c, o: c.authenticate(_SilentHandshake(), o),
    }
    # pyarrow's client raises OSError rather than the Flight class for GetSchema
    # (apache/arrow#43556); the status on the wire is UNAUTHENTICATED all the same.
    refused = (flight.FlightUnauthenticatedError, OSError)
    with flight.connect(secured) as client:
        with pytest.raises(refused, match=r"authentication required.*Unauthenticated"):
            calls[rpc](client, _as(None))
        with pytest.raises(refused, match="unknown or revoked"):
            calls[rpc](client, _as("fdt_not-a-real-token"))


def test_a_reader_may_read_but_not_write_or_administer(secured, tokens):
    reader = _as(tokens["reader"])
    with flight.connect(secured) as client:
        for rpc, call in READER_CALLS.items():
            try:
                call(client, reader)
            except flight.FlightUnauthorizedError:
                pytest.fail(f"{rpc} refused to a reader")
            except (flight.FlightError, pa.ArrowException):
                pass  # refused for other reasons (no NATS for live, a bad handle): not auth
        with pytest.raises(flight.FlightUnauthorizedError, match="needs the writer role"):
            _put(client, reader)
        with pytest.raises(flight.FlightUnauthorizedError, match="needs the admin role"):
            list(client.do_action(flight.Action("retention", b""), reader))


def test_a_writer_may_load_but_not_administer(secured, tokens):
    writer = _as(tokens["writer"])
    with flight.connect(secured) as client:
        assert _put(client, writer) == {"accepted": 3, "duplicates": 0}
        with pytest.raises(flight.FlightUnauthorizedError, match="'writer-bot' has writer"):
            list(client.do_action(flight.Action("reaggregate", b'{"all": true}'), writer))


def test_an_admin_runs_reaggregate_and_retention(secured, tokens):
    admin = _as(tokens["admin"])
    with flight.connect(secured) as client:
        _put(client, admin)
        [check] = client.do_action(
            flight.Action("reaggregate", b'{"dates": ["2024-01-15"], "check": true}'), admin
        )
        assert json.loads(check.body.to_pybytes()) == {
            "days": ["2024-01-15"],
            "daily_changed": 0,
            "hourly_changed": 0,
            "removed": 0,
            "applied": False,
        }
        [expired] = client.do_action(flight.Action("retention", b""), admin)
        assert json.loads(expired.body.to_pybytes())["deleted"] == 3  # 2024 is past 90 days
        kept = client.do_get(flight.Ticket(b"va_pageview_aggregate"), admin).read_all()
        assert kept.column("view_count").to_pylist() == [3]  # aggregates outlive raw events
        with pytest.raises(pa.ArrowInvalid, match="action-body"):
            list(client.do_action(flight.Action("reaggregate", b'{"dates": "x"}'), admin))


def test_basic_auth_handshake_earns_a_bearer_session(secured, auth_file):
    with flight.connect(secured) as client:
        name, value = client.authenticate_basic_token(b"rita", b"rita-pw")
        assert name == b"authorization" and value.startswith(b"Bearer fds_")
        session = flight.FlightCallOptions(headers=[(name, value)])
        assert len(list(client.list_flights(options=session))) == VIEWS
        with pytest.raises(flight.FlightUnauthorizedError, match="'rita' has reader"):
            _put(client, session)
        with pytest.raises(flight.FlightUnauthenticatedError, match="wrong user name or password"):
            client.authenticate_basic_token(b"rita", b"wrong")
        remove(auth_file, "rita")  # the running server re-reads the file
        time.sleep(0.01)
        with pytest.raises(flight.FlightUnauthenticatedError, match="no longer exists"):
            list(client.list_flights(options=session))


def test_basic_credentials_without_base64_padding_are_accepted(secured):
    # Drivers differ on padding; "rita:rita-pw" encodes to 16 chars + "==" padding.
    raw = base64.b64encode(b"rita:rita-pw").decode().rstrip("=")
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Basic {raw}".encode())])
    with flight.connect(secured) as client:
        assert len(list(client.list_flights(options=options))) == VIEWS


def test_tokens_added_while_serving_work_at_once(secured, auth_file):
    token = add_token(auth_file, "late", "reader")
    with flight.connect(secured) as client:
        assert len(list(client.list_flights(options=_as(token)))) == VIEWS


@pytest.mark.filterwarnings("ignore:Cannot disable autocommit")
def test_adbc_with_user_and_password_or_a_token(secured, tokens):
    with flightsql.connect(secured, db_kwargs={"username": "rita", "password": "rita-pw"}) as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM va_pageview_event WHERE page_url = ?", ("/a",))
            assert cursor.fetchone() == (0,)  # a reader may bind parameters
            with pytest.raises(flightsql.Error, match="needs the writer role"):
                cursor.adbc_ingest("tb_pageview_event", _events(), mode="append")
    header = {"adbc.flight.sql.authorization_header": f"Bearer {tokens['writer']}"}
    with flightsql.connect(secured, db_kwargs=header) as conn, conn.cursor() as cursor:
        assert cursor.adbc_ingest("tb_pageview_event", _events(), mode="append") == 3
    with pytest.raises(flightsql.Error, match="wrong user name or password"):
        with flightsql.connect(secured, db_kwargs={"username": "rita", "password": "x"}) as conn:
            conn.cursor().execute("SELECT 1")


@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_the_auth_file_holds_no_secret_and_is_private(tmp_path):
    path = tmp_path / "auth.toml"
    env = {"PATH": str(Path(sys.executable).parent)}
    subprocess.run(
        [sys.executable, "-m", "flightdeck.cli", "auth", "add-user", "bob", "--role", "writer",
         "--password-stdin", "--auth-file", str(path)],
        input="bob's password\n", text=True, check=True, env=env,
    )  # fmt: skip
    issued = subprocess.run(
        [sys.executable, "-m", "flightdeck.cli", "auth", "add-token", "ci", "--role", "reader",
         "--auth-file", str(path)],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.strip()  # fmt: skip
    text = path.read_text()
    assert issued.startswith("fdt_") and issued not in text and "bob's password" not in text
    assert path.stat().st_mode & 0o777 == 0o600
    data = tomllib.loads(text)
    assert data["users"]["bob"]["role"] == "writer"
    assert [t["name"] for t in data["tokens"]] == ["ci"]
    listing = subprocess.run(
        [sys.executable, "-m", "flightdeck.cli", "auth", "list", "--auth-file", str(path)],
        capture_output=True, text=True, check=True, env=env,
    ).stdout  # fmt: skip
    assert "bob" in listing and "ci" in listing and issued not in listing


def test_serve_refuses_a_public_interface_without_auth(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flightdeck.cli", "serve", "--host", "0.0.0.0",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "without authentication" in result.stderr and "--insecure" in result.stderr
    assert Settings(host="0.0.0.0", insecure=True).exposure_problem() is None
    assert Settings(host="0.0.0.0", auth_file=tmp_path / "a").exposure_problem() is None
    assert Settings(host="::1").exposure_problem() is None


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("flightdeck-client")
    paths = {}
    for name, blob in {
        "ca": ca.cert_pem,
        "cert": server.cert_chain_pems[0],
        "key": server.private_key_pem,
        "client_cert": client.cert_chain_pems[0],
        "client_key": client.private_key_pem,
    }.items():
        paths[name] = folder / f"{name}.pem"
        blob.write_to_path(str(paths[name]))
    return paths


def test_tls_serves_grpc_tls_only_to_clients_that_trust_it(store, tmp_path, certificates):
    settings = Settings(
        port=0, data_dir=tmp_path, tls_cert=certificates["cert"], tls_key=certificates["key"]
    )
    server = FlightdeckServer(settings, store)
    try:
        location = f"grpc+tls://127.0.0.1:{server.port}"
        with flight.connect(location, tls_root_certs=certificates["ca"].read_bytes()) as client:
            assert len(list(client.list_flights())) == VIEWS
        with flight.connect(location) as client:  # the system roots do not know our CA
            with pytest.raises(flight.FlightUnavailableError):
                list(client.list_flights(options=flight.FlightCallOptions(timeout=5)))
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            with pytest.raises(flight.FlightUnavailableError):
                list(client.list_flights(options=flight.FlightCallOptions(timeout=5)))
    finally:
        server.shutdown()


def test_mutual_tls_requires_a_client_certificate(store, tmp_path, certificates):
    settings = Settings(
        port=0,
        data_dir=tmp_path,
        tls_cert=certificates["cert"],
        tls_key=certificates["key"],
        tls_client_ca=certificates["ca"],
    )
    server = FlightdeckServer(settings, store)
    try:
        location = f"grpc+tls://127.0.0.1:{server.port}"
        ca = certificates["ca"].read_bytes()
        with flight.connect(
            location,
            tls_root_certs=ca,
            cert_chain=certificates["client_cert"].read_bytes(),
            private_key=certificates["client_key"].read_bytes(),
        ) as client:
            assert len(list(client.list_flights())) == VIEWS
        with flight.connect(location, tls_root_certs=ca) as client:
            with pytest.raises(flight.FlightUnavailableError):
                list(client.list_flights(options=flight.FlightCallOptions(timeout=5)))
    finally:
        server.shutdown()


def test_query_limit_refuses_the_extra_stream_by_name(store, tmp_path):
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path, max_queries=1), store)
    big = flight.FlightDescriptor.for_command(
        b"SELECT * FROM generate_series(1, 3000000) AS t(n)"
    )  # more than gRPC buffers: the server's stream stays open while we do not read
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            first = client.do_get(client.get_flight_info(big).endpoints[0].ticket)
            first.read_chunk()
            with pytest.raises(flight.FlightUnavailableError, match="--max-queries"):
                client.do_get(flight.Ticket(b"va_pageview_hourly")).read_all()
            first.cancel()
            deadline = time.monotonic() + 15
            while True:  # the slot comes back once the server notices the cancel
                try:
                    client.do_get(flight.Ticket(b"va_pageview_hourly")).read_all()
                    break
                except flight.FlightUnavailableError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
    finally:
        server.shutdown()


def test_put_batch_limit_refuses_the_put_by_name(store, tmp_path):
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path, max_put_batch_mb=0.01), store)
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            assert _put(client, None, _events(3))["accepted"] == 3
            big = _events(2000, prefix="big")  # about 60 kB in one batch
            with pytest.raises(pa.ArrowInvalid, match=r"\[batch-size\].*--max-put-batch-mb"):
                _put(client, None, big)
            rows = client.do_get(flight.Ticket(b"va_pageview_event")).read_all().num_rows
            assert rows == 3  # nothing of the refused put
    finally:
        server.shutdown()


def test_secrets_never_reach_the_log(secured, tokens, caplog):
    with flight.connect(secured) as client:
        with warnings.catch_warnings(), pytest.raises(flight.FlightUnauthorizedError):
            _put(client, _as(tokens["reader"]))
    assert tokens["reader"] not in caplog.text


def test_python_client_and_cli_carry_a_token(secured, tokens, tmp_path):
    import flightdeck

    with flightdeck.connect(secured, token=tokens["reader"]) as client:
        assert client.query("SELECT 1 AS one").to_pylist() == [{"one": 1}]
        with pytest.raises(flightdeck.Unauthorized, match="needs the writer role"):
            client.load(_events(), progress=False)
    with flightdeck.connect(secured) as client:
        with pytest.raises(flightdeck.Unauthorized, match="authentication required"):
            client.query("SELECT 1")
    done = subprocess.run(
        [sys.executable, "-m", "flightdeck.cli", "query", "SELECT 2 AS two", "--format", "csv",
         "--location", secured],
        capture_output=True, text=True, timeout=60,
        env={"PATH": str(Path(sys.executable).parent), "FLIGHTDECK_TOKEN": tokens["reader"]},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['"two"', "2"]


def test_a_missing_auth_file_stops_serve_with_the_fix(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "flightdeck.cli", "serve", "--port", "0", "--data-dir",
         str(tmp_path), "--auth-file", str(tmp_path / "nope.toml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "auth file" in done.stderr and "does not exist" in done.stderr
    assert "flightdeck auth add-user" in done.stderr


# ---- issue 14 item 9: the auth file, sessions and logins ----

CLI = [sys.executable, "-m", "flightdeck.cli"]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _login(client, user: str, password: str) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(headers=[client.authenticate_basic_token(user, password)])


@pytest.fixture
def scrypt_calls(monkeypatch) -> list[dict]:
    """Every scrypt the process runs from now on, with its cost parameters."""
    calls: list[dict] = []
    real = hashlib.scrypt

    def counted(password, **options):
        calls.append({k: v for k, v in options.items() if k != "salt"})
        return real(password, **options)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    return calls


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620])
def test_an_auth_file_others_may_read_or_write_is_refused_with_the_fix(auth_file, mode):
    auth_file.chmod(mode)
    with pytest.raises(AuthFileError) as refused:
        Authenticator(auth_file)
    message = str(refused.value)
    assert message.startswith(f"auth file {auth_file}: ") and "\n" not in message
    assert f"0{mode:o}" in message and f"chmod 600 {auth_file}" in message


def test_serve_refuses_a_readable_auth_file_before_starting_anything(auth_file, tmp_path):
    auth_file.chmod(0o644)
    done = subprocess.run(
        [*CLI, "serve", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--auth-file", str(auth_file)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"flightdeck: auth file {auth_file}: mode 0644 lets other users read it "
        f"(it holds the session signing key); run `chmod 600 {auth_file}`"
    ]
    assert not (tmp_path / "data").exists()  # refused before the store or NATS started


def test_auth_cli_writes_a_private_file_even_over_a_stale_temporary(tmp_path):
    path = tmp_path / "auth.toml"
    stale = tmp_path / "auth.toml.tmp"  # left by an earlier, interrupted write
    stale.write_text("")
    stale.chmod(0o644)
    add_user(path, "bob", "writer", "bob-pw")
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o640)  # an operator loosened it; the next write tightens it again
    add_token(path, "ci", "reader")
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth.toml", "auth.toml.tmp"]


def test_a_session_dies_with_the_credential_it_was_issued_for(secured, auth_file):
    """The repro: remove wally, re-add wally as admin: the old writer session must not
    run admin actions. A password change or a role change ends old sessions too."""
    retention = flight.Action("retention", b"")
    with flight.connect(secured) as client:
        add_user(auth_file, "wally", "writer", "wally-pw")
        writer_session = _login(client, "wally", "wally-pw")
        list(client.list_actions(writer_session))
        remove(auth_file, "wally")
        add_user(auth_file, "wally", "admin", "wally-pw")
        with pytest.raises(flight.FlightUnauthenticatedError, match="authenticate again"):
            list(client.do_action(retention, writer_session))
        with pytest.raises(flight.FlightUnauthenticatedError, match="authenticate again"):
            list(client.list_actions(writer_session))
        admin_session = _login(client, "wally", "wally-pw")
        list(client.do_action(retention, admin_session))  # a fresh login has the new role

        add_user(auth_file, "wally", "admin", "new-pw")  # password change, same role
        with pytest.raises(flight.FlightUnauthenticatedError, match="authenticate again"):
            list(client.list_actions(admin_session))
        demoted = _login(client, "wally", "new-pw")
        add_user(auth_file, "wally", "reader", "new-pw")  # role change, same password
        with pytest.raises(flight.FlightUnauthenticatedError, match="authenticate again"):
            list(client.list_actions(demoted))


def test_a_removed_token_stays_dead_when_its_name_returns(secured, auth_file):
    old = add_token(auth_file, "loader", "writer")
    with flight.connect(secured) as client:
        list(client.list_actions(_as(old)))
        remove(auth_file, "loader")
        add_token(auth_file, "loader", "admin")
        with pytest.raises(flight.FlightUnauthenticatedError, match="unknown or revoked"):
            list(client.do_action(flight.Action("retention", b""), _as(old)))


def test_unknown_user_and_wrong_password_cost_the_same_scrypt(auth_file, scrypt_calls):
    """No name enumeration by timing: both refusals run one scrypt of the same cost."""
    authenticator = Authenticator(auth_file)
    scrypt_calls.clear()
    for user in ("rita", "nobody"):
        with pytest.raises(flight.FlightUnauthenticatedError, match="wrong user name or password"):
            authenticator.authenticate(_basic(user, "guess"))
    assert len(scrypt_calls) == 2 and scrypt_calls[0] == scrypt_calls[1]
    assert scrypt_calls[0]["n"] >= 2**14


def test_failed_logins_are_throttled_per_user_without_running_scrypt(secured, scrypt_calls):
    scrypt_calls.clear()
    with flight.connect(secured) as client:
        for _ in range(LOGIN_ATTEMPTS):
            with pytest.raises(flight.FlightUnauthenticatedError, match="wrong user name"):
                client.authenticate_basic_token(b"rita", b"guess")
        assert len(scrypt_calls) == LOGIN_ATTEMPTS
        # The next attempt is refused before any scrypt, even with the right password.
        with pytest.raises(
            flight.FlightUnauthenticatedError, match=r"too many failed logins.*retry in \d+ s"
        ):
            client.authenticate_basic_token(b"rita", b"rita-pw")
        assert len(scrypt_calls) == LOGIN_ATTEMPTS
        # Another user is not locked out by rita's failures.
        list(client.list_actions(_login(client, "alice", "alice-pw")))


def test_a_parallel_flood_of_logins_runs_few_scrypts(auth_file, scrypt_calls):
    authenticator = Authenticator(auth_file)
    scrypt_calls.clear()
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            authenticator.authenticate(_basic("rita", "guess"))
        except flight.FlightError as exc:
            outcomes.append(str(exc).split(";")[0])

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 40
    assert len(scrypt_calls) <= LOGIN_ATTEMPTS
    assert outcomes.count("wrong user name or password") == len(scrypt_calls)


KEY = "signing_key = 'c2VjcmV0LWtleS0xMjM0NTY='\n"
BAD_FILES = {
    "not TOML": "signing_key = \n",
    "no signing key": "[users.rita]\nrole = 'reader'\npassword = 'scrypt$AA==$AA=='\n",
    "signing key not base64": "signing_key = 'x'\n",
    "token without hash": KEY + "[[tokens]]\nname = 'a'\nrole = 'reader'\n",
    "users not a table": KEY + "users = 3\n",
    "user without password": KEY + "[users.rita]\nrole = 'reader'\n",
}


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


@pytest.mark.parametrize("problem", BAD_FILES)
def test_a_malformed_auth_file_stops_serve_with_one_line(tmp_path, problem, capsys):
    from flightdeck.cli import main

    path = tmp_path / "auth.toml"
    _write_private(path, BAD_FILES[problem])
    with pytest.raises(AuthFileError) as refused:
        Authenticator(path)
    assert str(refused.value).startswith(f"auth file {path}: ")
    code = main(
        ["serve", "--port", "0", "--data-dir", str(tmp_path / "d"), "--auth-file", str(path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"flightdeck: auth file {path}: ") and "Traceback" not in err


def test_an_auth_file_broken_while_serving_fails_closed_in_one_line(secured, auth_file, tokens):
    good = auth_file.read_text()
    with flight.connect(secured) as client:
        _write_private(auth_file, "signing_key = 'x'\n")
        with pytest.raises(flight.FlightUnavailableError) as refused:
            list(client.list_actions(_as(tokens["admin"])))
        message = str(refused.value)
        assert "auth file" in message and "server log" in message
        assert str(auth_file) not in message and "Traceback" not in message
        _write_private(auth_file, good)
        list(client.list_actions(_as(tokens["admin"])))


def _forged_session(auth_file: Path, body: bytes) -> flight.FlightCallOptions:
    """A session token signed with the file's real key: claims no client could forge."""
    key = base64.b64decode(tomllib.loads(auth_file.read_text())["signing_key"])
    encoded = base64.urlsafe_b64encode(body).decode().rstrip("=")
    signature = hmac.new(key, encoded.encode(), hashlib.sha256).digest()
    token = f"fds_{encoded}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"
    return _as(token)


@pytest.mark.parametrize(
    "claims",
    [b"not json", b"[]", b'{"n": "rita"}', b'{"n": "rita", "e": "soon", "r": 1, "f": 2}',
     b'{"n": ["rita"], "e": 1e99, "r": "reader", "f": "x"}'],
)  # fmt: skip
def test_malformed_session_claims_are_unauthenticated_in_one_line(secured, auth_file, claims):
    with flight.connect(secured) as client:
        with pytest.raises(flight.FlightUnauthenticatedError) as refused:
            list(client.list_actions(_forged_session(auth_file, claims)))
    message = str(refused.value)
    assert "session token" in message and "Traceback" not in message
    assert str(auth_file) not in message


def test_forged_claims_are_signed_as_the_server_signs(secured, auth_file):
    """The forging helper above is faithful: an expired claim reaches the expiry check."""
    expired = json.dumps({"n": "rita", "r": "reader", "e": 1, "f": "x"}).encode()
    with flight.connect(secured) as client:
        with pytest.raises(flight.FlightUnauthenticatedError, match="session expired"):
            list(client.list_actions(_forged_session(auth_file, expired)))
