"""The one settings object: built once from flags, then environment, then defaults.

Each option is declared once, as a field of `Settings` made by `option()`: its type
(the annotation), default, environment variable, help and the commands that take it.
The flags, the environment mapping and README's configuration table
(settings_readme.py) are all generated from these declarations.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from flightdeck.flight_server.auth.oidc import OidcOptions
from flightdeck.ingest.event_types import EventTypes
from flightdeck.ingest.nats_worker import WorkerOptions
from flightdeck.views import StoreOptions
from flightdeck.views.rollup_spec import BUILTIN_DIR

__all__ = [
    "COMMANDS",
    "ENVIRONMENT",
    "Option",
    "Settings",
    "SettingsError",
    "add_arguments",
    "build_settings",
    "options",
]

_MiB = 1024 * 1024

# Which server commands take an option.
SERVE = frozenset({"serve"})
RUNNING = frozenset({"serve", "ingest"})  # the processes that run NATS and the worker
RETENTION = frozenset({"serve", "ingest", "retention"})
STORE = frozenset({"serve", "ingest", "migrate", "reaggregate", "retention"})
COMMANDS = STORE | {"nats-credentials"}
ROLLUPS = frozenset({"serve", "migrate"})  # the commands that install declared rollups


class SettingsError(ValueError):
    """A flag or environment value its option cannot take; the message names which."""


@dataclass(frozen=True)
class Option:
    env: str  # the environment variable; the flag is the field's name, dashed
    help: str  # what it sets; the flag's help adds the default and the variable
    commands: frozenset[str]
    group: str | None  # the heading it is listed under in --help
    unit: str = ""  # shown after the default
    unset: str = "none"  # what an option whose default is None does when not set
    note: str = ""  # more for README's table, too long for --help


def option(
    default: object,
    env: str,
    help: str,
    commands: frozenset[str] = SERVE,
    group: str | None = None,
    **more: str,
) -> typing.Any:
    return field(default=default, metadata={"option": Option(env, help, commands, group, **more)})


@dataclass(frozen=True)
class Settings:
    db: str | None = option(
        StoreOptions.db,
        "FLIGHTDECK_DB",
        "postgresql://… or a DuckDB file path",
        STORE,
        "store",
        unset="the DuckDB file DATA_DIR/flightdeck.duckdb",
    )
    db_read_url: str | None = option(
        StoreOptions.read_db,
        "FLIGHTDECK_DB_READ_URL",
        "postgresql://… of a reader role you created, for queries",
        STORE,
        "store",
        unset="the server creates its own reader role",
        note="On PostgreSQL, client queries log in as the reader role "
        "(see [Security](#security-and-operations)).",
    )
    read_replica: tuple[str, ...] = option(
        (),
        "FLIGHTDECK_READ_REPLICAS",
        "postgresql://host:port/db of a streaming standby that answers client queries "
        "(repeatable; the variable takes a comma-separated list)",
        SERVE,
        "store",
        unset="queries read the primary",
        note="DoGet and Flight SQL queries go round robin to the replicas that are up and "
        "within --replica-max-lag; ingest, live snapshots and flightdeck's own reads stay "
        "on the primary. Queries log in as the reader role (docs/architecture.md).",
    )
    replica_max_lag: float = option(
        StoreOptions.replica_max_lag_s,
        "FLIGHTDECK_REPLICA_MAX_LAG",
        "a read replica further behind the primary than this is skipped",
        SERVE,
        "store",
        unit="s",
    )
    data_dir: Path = option(
        StoreOptions.data_dir, "FLIGHTDECK_DATA_DIR", "embedded data folder", COMMANDS, "store"
    )
    views_dir: tuple[Path, ...] = option(
        (),
        "FLIGHTDECK_VIEWS_DIR",
        "extra folder of va_*.sql view files (repeatable; the variable takes a "
        f"{os.pathsep}-separated list)",
        STORE,
        "store",
    )
    rollups_dir: Path | None = option(
        None,
        "FLIGHTDECK_ROLLUPS_DIR",
        "folder of rollup declarations (*.toml), kept beside the built-ins (docs/rollups.md)",
        ROLLUPS,
        "store",
        unset="the built-in rollups only",
    )
    no_builtin_rollups: bool = option(
        False,
        "FLIGHTDECK_NO_BUILTIN_ROLLUPS",
        "keep only the rollups of --rollups-dir, not the built-ins",
        ROLLUPS,
        "store",
    )
    host: str = option("127.0.0.1", "FLIGHTDECK_HOST", "interface to bind", group="network")
    port: int = option(8815, "FLIGHTDECK_PORT", "port to listen on", group="network")
    http_port: int = option(
        8816,
        "FLIGHTDECK_HTTP_PORT",
        "port of the HTTP face (JSON/CSV/Arrow/Parquet queries, live updates as "
        "Server-Sent Events, /healthz, /readyz) on --host; 0 turns it off",
        group="network",
        note="Same auth, roles, SQL guard and limits as Flight (docs/http.md).",
    )
    advertise: str | None = option(
        None,
        "FLIGHTDECK_ADVERTISE",
        "location clients should use, e.g. grpc://host:8815",
        group="network",
        unset="endpoints tell clients to reuse their channel",
    )
    heartbeat: float = option(
        5.0,
        "FLIGHTDECK_HEARTBEAT",
        "seconds between heartbeats on a quiet live subscription",
        group="network",
        unit="s",
    )
    live_buffer_rows: int = option(
        100_000,
        "FLIGHTDECK_LIVE_BUFFER_ROWS",
        "unsent rows (distinct keys) a live subscriber may lag by before it is closed",
        group="network",
    )
    live_held_rows: int = option(
        1_000_000,
        "FLIGHTDECK_LIVE_HELD_ROWS",
        "rows a live subscriber may hold (its snapshot and changes since) before it is closed",
        group="network",
    )
    auth_file: Path | None = option(
        None,
        "FLIGHTDECK_AUTH_FILE",
        "TOML file of users and tokens (see `flightdeck auth`)",
        group="security",
        unset="no users, loopback only",
    )
    oidc_issuer: str | None = option(
        None,
        "FLIGHTDECK_OIDC_ISSUER",
        "single sign-on: accept JWT bearer tokens of this OpenID Connect issuer (https://…), "
        "keys from its /.well-known/openid-configuration",
        group="security",
        unset="off",
        note="Beside `--auth-file` or instead of it (docs/architecture.md, Single sign-on).",
    )
    oidc_audience: str | None = option(
        None,
        "FLIGHTDECK_OIDC_AUDIENCE",
        "the `aud` a token must name (this server's client id at the issuer)",
        group="security",
    )
    oidc_roles_claim: str = option(
        "roles",
        "FLIGHTDECK_OIDC_ROLES_CLAIM",
        "token claim (dotted path for a nested one) listing reader, writer or admin; "
        "the highest counts",
        group="security",
    )
    oidc_client_id: str | None = option(
        None,
        "FLIGHTDECK_OIDC_CLIENT_ID",
        "the dashboard's client id at the issuer (a public client, authorization code with "
        "PKCE, redirect URI http(s)://this-host:http-port/): the dashboard offers to sign in "
        "there",
        group="security",
        unset="the dashboard asks for a password or token",
    )
    oidc_scope: str = option(
        "openid",
        "FLIGHTDECK_OIDC_SCOPE",
        "scopes the dashboard asks the issuer for (space-separated): those that give an "
        "access token naming --oidc-audience",
        group="security",
    )
    insecure: bool = option(
        False,
        "FLIGHTDECK_INSECURE",
        "allow --host other than loopback without --auth-file",
        group="security",
    )
    tls_cert: Path | None = option(
        None,
        "FLIGHTDECK_TLS_CERT",
        "PEM certificate chain: serve grpc+tls://",
        group="security",
        unset="plain grpc://",
    )
    tls_key: Path | None = option(
        None, "FLIGHTDECK_TLS_KEY", "PEM private key of --tls-cert", group="security"
    )
    tls_client_ca: Path | None = option(
        None,
        "FLIGHTDECK_TLS_CLIENT_CA",
        "PEM CA: require client certificates signed by it (mutual TLS)",
        group="security",
        unset="no client certificates asked",
    )
    query_timeout: float = option(
        StoreOptions.statement_timeout_s,
        "FLIGHTDECK_QUERY_TIMEOUT",
        "seconds a query may run in the store",
        group="limits",
        unit="s",
    )
    max_queries: int = option(
        32,
        "FLIGHTDECK_MAX_QUERIES",
        "concurrent query streams (and schemas that run a query)",
        group="limits",
    )
    max_subscribers: int = option(
        1000, "FLIGHTDECK_MAX_SUBSCRIBERS", "concurrent live subscriptions", group="limits"
    )
    max_sessions: int = option(
        10_000,
        "FLIGHTDECK_MAX_SESSIONS",
        "Flight sessions (a client's catalog and schema) kept per server process; "
        "the least recently used goes first",
        group="limits",
    )
    session_timeout: float = option(
        3600.0,
        "FLIGHTDECK_SESSION_TIMEOUT",
        "seconds an unused Flight session is kept before it is forgotten",
        group="limits",
        unit="s",
    )
    max_put_batch_mb: float = option(
        64.0,
        "FLIGHTDECK_MAX_PUT_BATCH_MB",
        "one record batch of a DoPut, decoded, at most",
        group="limits",
        unit="MB",
    )
    max_parameter_mb: float = option(
        1.0,
        "FLIGHTDECK_MAX_PARAMETER_MB",
        "bound query parameters (tickets, handles, DoPut), decoded, at most",
        group="limits",
        unit="MB",
    )
    max_query_kb: int = option(
        256,
        "FLIGHTDECK_MAX_QUERY_KB",
        "SQL text of one query (UTF-8); longer text is refused unread",
        group="limits",
        unit="KB",
    )
    # Shorter than query_timeout: an idle stream holds a slot and a connection.
    stream_idle_timeout: float = option(
        30.0,
        "FLIGHTDECK_STREAM_IDLE_TIMEOUT",
        "seconds a query stream waits for its client to read on before it is cancelled "
        "and its slot freed",
        group="limits",
        unit="s",
    )
    pool_size: int = option(
        StoreOptions.pool_size,
        "FLIGHTDECK_POOL_SIZE",
        "PostgreSQL connections per pool",
        group="limits",
    )
    pool_timeout: float = option(
        StoreOptions.pool_timeout_s,
        "FLIGHTDECK_POOL_TIMEOUT",
        "seconds a request waits for a free PostgreSQL connection, then UNAVAILABLE",
        group="limits",
        unit="s",
    )
    duckdb_memory_limit: str | None = option(
        StoreOptions.duckdb_memory_limit,
        "FLIGHTDECK_DUCKDB_MEMORY_LIMIT",
        "cap the embedded DuckDB's buffer pool, e.g. 2GB",
        group="limits",
        unset="DuckDB's own, 80% of RAM",
        note="The buffer pool otherwise keeps the blocks queries touched (most of the "
        "server's memory above its ~215 MB baseline). Primary-key indexes must fit in it "
        "for ingest, and a big `GROUP BY` needs room: `256MB` failed a 300 k-row put into "
        "a 600 k-row store, `64MB` a `GROUP BY` over 10 M rows.",
    )
    nats: str | None = option(
        None,
        "NATS_URL",
        "nats://… of an external NATS server (a cluster: comma-separated)",
        RUNNING,
        "ingest",
        unset="`serve` starts an embedded nats-server under the data dir; `ingest` needs it",
    )
    nats_creds: Path | None = option(
        None,
        "NATS_CREDS",
        "NATS credentials file (.creds, JWT + NKey) for --nats",
        RUNNING,
        "ingest",
    )
    nats_replicas: int | None = option(
        None,
        "FLIGHTDECK_NATS_REPLICAS",
        "copies of each of flightdeck's JetStream streams, on as many nodes of a NATS cluster",
        RUNNING,
        "ingest",
        unset="new streams get 1; existing streams keep theirs",
        note="EVENTS (with the dead letters), AGGREGATES and the worker's bucket are created "
        "with this many replicas, and an existing stream with another number is moved to it "
        "in place; give every `serve` and `ingest` the same value. 3 survives the loss of "
        "any one node of a 3-node cluster; more than 1 needs a cluster. Unset, a process "
        "never moves a stream an operator replicated.",
    )
    update_log_hours: float = option(
        168.0,
        "FLIGHTDECK_UPDATE_LOG_HOURS",
        "hours of aggregate updates kept: how far back a live cursor can resume",
        RUNNING,
        "ingest",
        unit="h",
    )
    ingest_batch: int = option(
        20_000,
        "FLIGHTDECK_INGEST_BATCH",
        "NATS messages per ingest commit, at most (a batch fills only under backlog)",
        RUNNING,
        "ingest",
    )
    ingest_wait_ms: int = option(
        100,
        "FLIGHTDECK_INGEST_WAIT_MS",
        "how long a NATS batch may wait to fill",
        RUNNING,
        "ingest",
        unit="ms",
    )
    ingest_batch_mb: float = option(
        128.0,
        "FLIGHTDECK_INGEST_BATCH_MB",
        "decoded NATS messages per ingest commit, at most",
        RUNNING,
        "ingest",
        unit="MB",
    )
    max_message_mb: float = option(
        16.0,
        "FLIGHTDECK_MAX_MESSAGE_MB",
        "one NATS message (events and live updates), decoded; larger events are dead-lettered",
        RUNNING,
        "ingest",
        unit="MB",
    )
    max_deliveries: int = option(
        5,
        "FLIGHTDECK_MAX_DELIVERIES",
        "deliveries of a NATS message the worker died handling, before it is dead-lettered",
        RUNNING,
        "ingest",
    )
    ingest_ack_wait: float = option(
        60.0,
        "FLIGHTDECK_INGEST_ACK_WAIT",
        "seconds before a batch a crashed worker took is redelivered (a live worker marks "
        "what it holds in progress, so a slow commit is not)",
        RUNNING,
        "ingest",
        unit="s",
        note="Applies when the consumer is created.",
    )
    event_types: Path | None = option(
        None,
        "FLIGHTDECK_EVENT_TYPES",
        "TOML file declaring event types and their required properties",
        RUNNING,
        "ingest",
        unset="no declared types",
    )
    strict_event_types: bool = option(
        False,
        "FLIGHTDECK_STRICT_EVENT_TYPES",
        "refuse events of types the --event-types file does not declare",
        RUNNING,
        "ingest",
    )
    raw_retention_days: int = option(
        90,
        "FLIGHTDECK_RAW_RETENTION_DAYS",
        "keep raw events this many whole UTC days; aggregates stay; 0 keeps all",
        RETENTION,
    )
    log_level: str = option(
        "INFO", "FLIGHTDECK_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", RUNNING
    )
    metrics_port: int | None = option(
        None,
        "FLIGHTDECK_METRICS_PORT",
        "serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port)",
        RUNNING,
        unset="off",
        note="Listens on `--host` only with `--auth-file` (bearer token required) or "
        "`--insecure`, else on loopback.",
    )
    # Not options: the shape of every result stream.
    batch_rows: int = 65_536  # rows per Flight message, at most
    batch_bytes: int = 2 * _MiB  # bytes per Flight message, at most (gRPC clients cap at 4 MB)

    @property
    def location(self) -> str:
        scheme = "grpc+tls" if self.tls_cert else "grpc"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def max_query_bytes(self) -> int:
        return self.max_query_kb * 1024

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * _MiB)

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: assume it is reachable from elsewhere

    def exposure_problem(self) -> str | None:
        """Why serving with these settings would be unsafe, or None."""
        if self.authenticated or self.loopback or self.insecure:
            return None
        return (
            f"refusing to serve on {self.host} without authentication: pass --auth-file "
            "(see `flightdeck auth --help`), or --insecure if this network is trusted"
        )

    @property
    def authenticated(self) -> bool:
        """Whether callers must prove who they are (an auth file, single sign-on or both)."""
        return bool(self.auth_file or self.oidc_issuer)

    def oidc_options(self) -> OidcOptions | None:
        """Single sign-on's settings; ValueError if the issuer or audience is unusable."""
        if not self.oidc_issuer:
            if self.oidc_client_id:
                raise ValueError("--oidc-client-id needs --oidc-issuer: where to sign in")
            return None
        return OidcOptions(self.oidc_issuer, self.oidc_audience or "", self.oidc_roles_claim)

    @property
    def metrics_host(self) -> str:
        """Where /metrics listens: beside Flight where Flight may listen (loopback, or
        with auth, which then guards the scrape too, or --insecure); else loopback,
        as for `flightdeck ingest`, which has no Flight listener to refuse."""
        if self.authenticated or self.loopback or self.insecure:
            return self.host
        return "127.0.0.1"

    def tls_options(self) -> dict:
        """FlightServerBase's TLS arguments: none, server TLS, or mutual TLS."""
        if not self.tls_cert:
            return {}
        if not self.tls_key:
            raise ValueError("--tls-cert needs --tls-key (the certificate's private key)")
        options: dict = {
            "tls_certificates": [(self.tls_cert.read_bytes(), self.tls_key.read_bytes())]
        }
        if self.tls_client_ca:
            options["verify_client"] = True
            options["root_certificates"] = self.tls_client_ca.read_bytes()
        return options

    def store_options(self) -> StoreOptions:
        return StoreOptions(
            db=self.db,
            data_dir=self.data_dir,
            statement_timeout_s=self.query_timeout,
            pool_size=self.pool_size,
            pool_timeout_s=self.pool_timeout,
            duckdb_memory_limit=self.duckdb_memory_limit,
            read_db=self.db_read_url,
            read_replicas=self.read_replica,
            replica_max_lag_s=self.replica_max_lag,
        )

    def rollup_folders(self) -> list[Path]:
        """Where the declared rollups are: the built-ins, then the user's folder."""
        folders = [] if self.no_builtin_rollups else [BUILTIN_DIR]
        return folders + ([self.rollups_dir] if self.rollups_dir else [])

    def event_type_rules(self) -> EventTypes:
        """The declared event types; EventTypesFileError if the file cannot be read."""
        return EventTypes.load(self.event_types, self.strict_event_types)

    def worker_options(self) -> WorkerOptions:
        return WorkerOptions(
            batch=self.ingest_batch,
            wait_ms=self.ingest_wait_ms,
            ack_wait_s=self.ingest_ack_wait,
            max_message_bytes=self.max_message_bytes,
            batch_bytes=int(self.ingest_batch_mb * _MiB),
            max_deliveries=self.max_deliveries,
            event_types=self.event_type_rules(),
            replicas=self.nats_replicas,
        )


def options() -> list[tuple[str, Option, object]]:
    """Every option in declaration order: (field name, declaration, default)."""
    return [(f.name, f.metadata["option"], f.default) for f in fields(Settings) if f.metadata]


# setting name -> environment variable; flags of the same name win over these.
ENVIRONMENT = {name: o.env for name, o, _ in options()}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def shown_default(o: Option, default: object) -> str:
    if default is None or default == ():
        return o.unset
    if isinstance(default, bool):
        return "on" if default else "off"
    return f"{default} {o.unit}".strip()


def add_arguments(parser: argparse.ArgumentParser, command: str = "serve") -> None:
    """The flags of `command` that set Settings; every default is None so the
    environment can fill in. Values are converted (and refused) by build_settings."""
    groups: dict[str | None, argparse._ActionsContainer] = {None: parser}
    for name, o, default in options():
        if command not in o.commands:
            continue
        if o.group not in groups:
            groups[o.group] = parser.add_argument_group(o.group)
        text = f"{o.help} (default: {shown_default(o, default)}) [env {o.env}]"
        kind = _kind(name)
        extra: dict = {"action": "store_true"} if kind is bool else {"metavar": name.upper()}
        if kind is tuple:
            extra["action"] = "append"
        groups[o.group].add_argument(
            flag(name), dest=name, default=None, help=text.replace("%", "%%"), **extra
        )


def build_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Flags over environment over defaults, each value converted to its option's type."""
    values = {}
    for name, o, _ in options():
        given = getattr(args, name, None)
        source, raw = (flag(name), given) if given is not None else (o.env, environ.get(o.env))
        if raw is None or raw == "":
            continue
        values[name] = _convert(name, source, raw)
    return Settings(**values)


def _kind(name: str) -> type:
    """The option's type, None stripped: `int | None` is int."""
    hint = typing.get_type_hints(Settings)[name]
    if isinstance(hint, types.UnionType):
        (hint,) = (a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def _items(name: str) -> type:
    """A tuple option's item type: tuple[str, ...] is str."""
    return typing.get_args(typing.get_type_hints(Settings)[name])[0]


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _convert(name: str, source: str, raw: object) -> object:
    kind = _kind(name)
    if kind is tuple and _items(name) is str:  # URLs hold colons: a comma-separated list
        items = raw if isinstance(raw, list) else str(raw).split(",")
        return tuple(item.strip() for item in items if item.strip())
    if kind is tuple:
        items = raw if isinstance(raw, list) else str(raw).split(os.pathsep)
        return tuple(Path(p) for p in items)
    if kind is bool:
        if raw is True or str(raw).lower() in _TRUE:
            return True
        if str(raw).lower() in _FALSE:
            return False
        raise SettingsError(f"{source}: {raw!r} is not one of {', '.join(_TRUE + _FALSE)}")
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{source}: {raw!r} is not a number ({kind.__name__})") from None
    if isinstance(value, int | float) and value < 0:
        raise SettingsError(f"{source}: {raw!r} is negative")
    return value
