"""The one settings object: built once from flags, then environment, then defaults."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from flightdeck.views import StoreOptions

__all__ = ["ENVIRONMENT", "Settings", "add_arguments", "build_settings"]

# setting name -> environment variable; flags of the same name win over these.
ENVIRONMENT = {
    "host": "FLIGHTDECK_HOST",
    "port": "FLIGHTDECK_PORT",
    "db": "FLIGHTDECK_DB",
    "db_read_url": "FLIGHTDECK_DB_READ_URL",
    "data_dir": "FLIGHTDECK_DATA_DIR",
    "nats": "NATS_URL",
    "nats_creds": "NATS_CREDS",
    "views_dir": "FLIGHTDECK_VIEWS_DIR",
    "query_timeout": "FLIGHTDECK_QUERY_TIMEOUT",
    "pool_size": "FLIGHTDECK_POOL_SIZE",
    "pool_timeout": "FLIGHTDECK_POOL_TIMEOUT",
    "stream_idle_timeout": "FLIGHTDECK_STREAM_IDLE_TIMEOUT",
    "duckdb_memory_limit": "FLIGHTDECK_DUCKDB_MEMORY_LIMIT",
    "advertise": "FLIGHTDECK_ADVERTISE",
    "ingest_batch": "FLIGHTDECK_INGEST_BATCH",
    "ingest_wait_ms": "FLIGHTDECK_INGEST_WAIT_MS",
    "ingest_ack_wait": "FLIGHTDECK_INGEST_ACK_WAIT",
    "raw_retention_days": "FLIGHTDECK_RAW_RETENTION_DAYS",
    "heartbeat": "FLIGHTDECK_HEARTBEAT",
    "live_buffer_rows": "FLIGHTDECK_LIVE_BUFFER_ROWS",
    "update_log_hours": "FLIGHTDECK_UPDATE_LOG_HOURS",
    "log_level": "FLIGHTDECK_LOG_LEVEL",
    "auth_file": "FLIGHTDECK_AUTH_FILE",
    "insecure": "FLIGHTDECK_INSECURE",
    "tls_cert": "FLIGHTDECK_TLS_CERT",
    "tls_key": "FLIGHTDECK_TLS_KEY",
    "tls_client_ca": "FLIGHTDECK_TLS_CLIENT_CA",
    "max_queries": "FLIGHTDECK_MAX_QUERIES",
    "max_subscribers": "FLIGHTDECK_MAX_SUBSCRIBERS",
    "max_put_batch_mb": "FLIGHTDECK_MAX_PUT_BATCH_MB",
    "max_parameter_mb": "FLIGHTDECK_MAX_PARAMETER_MB",
    "max_message_mb": "FLIGHTDECK_MAX_MESSAGE_MB",
    "ingest_batch_mb": "FLIGHTDECK_INGEST_BATCH_MB",
    "max_deliveries": "FLIGHTDECK_MAX_DELIVERIES",
    "max_query_kb": "FLIGHTDECK_MAX_QUERY_KB",
    "metrics_port": "FLIGHTDECK_METRICS_PORT",
}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8815
    db: str | None = None  # None: the embedded DuckDB file under data_dir
    db_read_url: str | None = None  # PostgreSQL: an operator-made reader role; None: our own
    data_dir: Path = Path("flightdeck-data")
    nats: str | None = None  # None: start an embedded nats-server under data_dir
    nats_creds: Path | None = None  # a NATS .creds file (JWT + NKey) for --nats
    views_dir: tuple[Path, ...] = field(default=())  # extra folders of va_*.sql files
    query_timeout: float = 300.0  # seconds a query may run in the store
    pool_size: int = 8  # PostgreSQL connections per pool
    pool_timeout: float = 10.0  # seconds a request waits for a free PostgreSQL connection
    # Seconds a result stream waits for its client to take the next batch, then is
    # cancelled: shorter than query_timeout, as an idle stream holds a slot and a connection.
    stream_idle_timeout: float = 30.0
    duckdb_memory_limit: str | None = None  # DuckDB's buffer pool, e.g. "2GB"; None: DuckDB's
    batch_rows: int = 65_536  # rows per Flight message, at most
    batch_bytes: int = (
        2 * 1024 * 1024
    )  # bytes per Flight message, at most (gRPC clients cap at 4 MB)
    advertise: str | None = None  # location put in FlightInfo endpoints; None: reuse the channel
    ingest_batch: int = 20_000  # NATS messages per ingest commit, at most (fills under backlog)
    ingest_wait_ms: int = 100  # how long a NATS batch may wait to fill
    ingest_ack_wait: float = 60.0  # seconds before an unacked NATS batch is redelivered
    raw_retention_days: int = 90  # raw events kept this many whole UTC days; 0 keeps all
    heartbeat: float = 5.0  # seconds between heartbeats on a quiet live subscription
    live_buffer_rows: int = 100_000  # unsent rows (distinct keys) a live subscriber may lag by
    update_log_hours: float = 168.0  # how far back a live cursor can resume (AGGREGATES max age)
    log_level: str = "INFO"
    auth_file: Path | None = None  # users and tokens; None: no auth, loopback only
    insecure: bool = False  # allow a non-loopback host without auth
    tls_cert: Path | None = None  # PEM certificate chain: serve grpc+tls://
    tls_key: Path | None = None  # its PEM private key
    tls_client_ca: Path | None = None  # PEM CA: require client certificates signed by it
    max_queries: int = 32  # concurrent DoGet streams
    max_subscribers: int = 1000  # concurrent live subscriptions
    max_put_batch_mb: float = 64.0  # one record batch of a DoPut, decoded, at most
    max_parameter_mb: float = 1.0  # bound query parameters (tickets, handles, DoPut), decoded
    max_message_mb: float = 16.0  # one NATS event message, decoded, at most
    ingest_batch_mb: float = 128.0  # decoded NATS messages per ingest commit, at most
    max_deliveries: int = 5  # a NATS message the worker died handling is dead-lettered after
    max_query_kb: int = 256  # SQL text of one query, at most (UTF-8 KB); read by the guard
    metrics_port: int | None = None  # Prometheus /metrics on this port; 0: a free one; None: off

    @property
    def location(self) -> str:
        scheme = "grpc+tls" if self.tls_cert else "grpc"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def max_query_bytes(self) -> int:
        return self.max_query_kb * 1024

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
        if self.auth_file or self.loopback or self.insecure:
            return None
        return (
            f"refusing to serve on {self.host} without authentication: pass --auth-file "
            "(see `flightdeck auth --help`), or --insecure if this network is trusted"
        )

    @property
    def metrics_host(self) -> str:
        """Where /metrics listens: beside Flight where Flight may listen (loopback, or
        with auth, which then guards the scrape too, or --insecure); else loopback,
        as for `flightdeck ingest`, which has no Flight listener to refuse."""
        if self.auth_file or self.loopback or self.insecure:
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
        )


def add_arguments(
    parser: argparse.ArgumentParser,
    *,
    network: bool = True,
    ingest: bool = True,
    retention: bool = True,
) -> None:
    """The flags that set Settings; every default is None so environment can fill in.

    `network`: the Flight listener's flags; `ingest`: NATS and the worker's;
    `retention`: how long raw events are kept.
    """
    store = parser.add_argument_group("store")
    store.add_argument("--db", help="postgresql://… or a DuckDB file path [env FLIGHTDECK_DB]")
    store.add_argument(
        "--db-read-url",
        help="postgresql://… of a reader role you created, for queries (default: the server "
        "creates one) [env FLIGHTDECK_DB_READ_URL]",
    )
    store.add_argument(
        "--data-dir", type=Path, help="embedded data folder (default ./flightdeck-data)"
    )
    store.add_argument(
        "--views-dir",
        type=Path,
        action="append",
        help="extra folder of va_*.sql view files (repeatable) [env FLIGHTDECK_VIEWS_DIR]",
    )
    if network:
        net = parser.add_argument_group("network")
        net.add_argument("--host", help="interface to bind (default 127.0.0.1)")
        net.add_argument("--port", type=int, help="port to listen on (default 8815)")
        net.add_argument("--advertise", help="location clients should use, e.g. grpc://host:8815")
        net.add_argument(
            "--heartbeat", type=float, help="seconds between live heartbeats when quiet (default 5)"
        )
        net.add_argument(
            "--live-buffer-rows",
            type=int,
            help="unsent rows a live subscriber may lag by before it is closed (default 100000)",
        )
        security = parser.add_argument_group("security")
        security.add_argument(
            "--auth-file",
            type=Path,
            help="TOML file of users and tokens (see `flightdeck auth`) [env FLIGHTDECK_AUTH_FILE]",
        )
        security.add_argument(
            "--insecure",
            action="store_true",
            default=None,
            help="allow --host other than loopback without --auth-file",
        )
        security.add_argument("--tls-cert", type=Path, help="PEM certificate: serve grpc+tls://")
        security.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
        security.add_argument(
            "--tls-client-ca", type=Path, help="PEM CA: require client certificates (mutual TLS)"
        )
        limits = parser.add_argument_group("limits")
        limits.add_argument(
            "--query-timeout", type=float, help="seconds a query may run (default 300)"
        )
        limits.add_argument("--max-queries", type=int, help="concurrent query streams (default 32)")
        limits.add_argument(
            "--max-subscribers", type=int, help="concurrent live subscriptions (default 1000)"
        )
        limits.add_argument(
            "--max-put-batch-mb",
            type=float,
            help="MB per DoPut record batch, decoded (default 64)",
        )
        limits.add_argument(
            "--max-parameter-mb",
            type=float,
            help="MB of bound query parameters, decoded (default 1)",
        )
        limits.add_argument(
            "--max-query-kb",
            type=int,
            help="KB of SQL text per query; longer text is refused unread (default 256)",
        )
        limits.add_argument(
            "--stream-idle-timeout",
            type=float,
            help="seconds a query stream waits for its client to read on before it is "
            "cancelled and its slot freed (default 30)",
        )
        limits.add_argument(
            "--pool-size", type=int, help="PostgreSQL connections per pool (default 8)"
        )
        limits.add_argument(
            "--pool-timeout",
            type=float,
            help="seconds a request waits for a free PostgreSQL connection (default 10)",
        )
        limits.add_argument(
            "--duckdb-memory-limit",
            help="cap the embedded DuckDB's buffer pool, e.g. 2GB (default: DuckDB's, 80%% of RAM)",
        )
    if ingest:
        write = parser.add_argument_group("ingest")
        write.add_argument(
            "--nats", help="nats://… of an external NATS server (default: embedded) [env NATS_URL]"
        )
        write.add_argument(
            "--nats-creds",
            type=Path,
            help="NATS credentials file (.creds) for --nats [env NATS_CREDS]",
        )
        write.add_argument(
            "--update-log-hours",
            type=float,
            help="hours of aggregate updates kept for live resume (default 168)",
        )
        write.add_argument(
            "--ingest-batch", type=int, help="NATS messages per ingest commit (default 20000)"
        )
        write.add_argument(
            "--ingest-wait-ms", type=int, help="ms a NATS batch may wait to fill (default 100)"
        )
        write.add_argument(
            "--ingest-batch-mb",
            type=float,
            help="MB of decoded NATS messages per ingest commit (default 128)",
        )
        write.add_argument(
            "--max-message-mb",
            type=float,
            help="MB per NATS event message, decoded; larger ones are dead-lettered (default 16)",
        )
        write.add_argument(
            "--max-deliveries",
            type=int,
            help="deliveries of a NATS message the worker died handling, before it is "
            "dead-lettered (default 5)",
        )
        write.add_argument(
            "--ingest-ack-wait",
            type=float,
            help="seconds before a batch a crashed worker took is redelivered (default 60)",
        )
    if retention:
        parser.add_argument(
            "--raw-retention-days",
            type=int,
            help="keep raw events this many UTC days; aggregates stay (default 90, 0: forever)",
        )
    if network or ingest:
        parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
        parser.add_argument(
            "--metrics-port",
            type=int,
            help="serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port; "
            "default off) [env FLIGHTDECK_METRICS_PORT]",
        )


def build_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Flags over environment over defaults, each value converted to its field's type."""
    values = {}
    for f in fields(Settings):
        flag = getattr(args, f.name, None)
        raw = flag if flag is not None else environ.get(ENVIRONMENT.get(f.name, ""), None)
        if raw is None or raw == "":
            continue
        values[f.name] = _convert(f.name, raw)
    return Settings(**values)


def _convert(name: str, raw: object) -> object:
    default = getattr(Settings, name, None)
    if name == "views_dir":
        items = raw if isinstance(raw, list) else str(raw).split(":")
        return tuple(Path(p) for p in items)
    if name in ("data_dir", "auth_file", "tls_cert", "tls_key", "tls_client_ca", "nats_creds"):
        return Path(raw)
    if name == "metrics_port":  # its default, None, says nothing of its type
        return int(raw)
    if isinstance(default, bool):
        return str(raw).lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw
