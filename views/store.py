"""ADBC connections to the store: an embedded DuckDB file or PostgreSQL.

The rest of flightdeck sees one small interface: `read()` streams a client
query's result as a RecordBatchReader on a read-only connection (on PostgreSQL,
logged in as the least-privilege reader role; on DuckDB, after checking DuckDB's
own parse and plan of it), `read_internal()` does the same
for flightdeck's own queries of its tables and catalogs, `write()` lends a
transactional connection, `schema()` describes a query without running it, and
`parameter_types()` what its parameters take (parameter_types.py).
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import adbc_driver_manager
import adbc_driver_manager.dbapi as dbapi
import pyarrow as pa
from adbc_driver_manager import AdbcStatusCode

from . import reader_role
from .conform import conform_batch, conform_schema
from .duckdb_check import EngineCheck
from .errors import BackendError
from .interrupt import Interrupt
from .parameter_types import duckdb_parameter_types, postgres_parameter_types
from .replicas import PRIMARY_SQL, REPLAYED_SQL, Replica, Replicas, parse_lsn, replica_login

__all__ = ["Store", "StoreOptions", "backend_errors", "open_store"]


@dataclass(frozen=True)
class StoreOptions:
    """What the store needs to know; built from the server's settings."""

    db: str | None = None  # postgresql://… or a DuckDB file path; None: embedded default
    data_dir: Path = Path("flightdeck-data")
    statement_timeout_s: float = 300.0
    pool_size: int = 8
    pool_timeout_s: float = 10.0  # a request waits this long for a free connection
    duckdb_memory_limit: str | None = None  # None: DuckDB's default, 80 % of RAM
    read_db: str | None = None  # postgresql://… of an operator-made reader role; None: ours
    read_replicas: tuple[str, ...] = ()  # postgresql://… of standbys that answer queries
    replica_max_lag_s: float = 5.0  # a replica further behind is skipped


class Store(Protocol):
    """`replica=True` lets a read replica answer (a client's query, which may see a
    commit a little late); left False, the read sees every acknowledged commit."""

    backend: str  # "duckdb" | "postgresql": also the SQL dialect
    schema_name: str  # where flightdeck's tables and views live

    def read(
        self,
        sql: str,
        parameters: pa.RecordBatch | None = None,
        *,
        interrupt: Interrupt | None = None,
        replica: bool = False,
    ) -> contextlib.AbstractContextManager[pa.RecordBatchReader]: ...
    def schema(
        self, sql: str, parameters: pa.RecordBatch | None = None, *, replica: bool = False
    ) -> pa.Schema: ...
    def parameter_types(self, sql: str, count: int) -> list[pa.DataType]: ...
    def read_internal(
        self, sql: str, parameters: pa.RecordBatch | None = None
    ) -> contextlib.AbstractContextManager[pa.RecordBatchReader]: ...
    def write(
        self, *, staging: bool = False
    ) -> contextlib.AbstractContextManager[dbapi.Connection]: ...
    def end_staging(self, conn: dbapi.Connection) -> None: ...
    def memory_bytes(self) -> int | None: ...
    def close(self) -> None: ...


def open_store(options: StoreOptions) -> Store:
    """Open the store named by `options.db` (the embedded DuckDB file by default)."""
    db = options.db
    if db and db.startswith(("postgresql://", "postgres://")):
        return PostgresStore(db, options)
    path = Path(db.removeprefix("duckdb://")) if db else options.data_dir / "flightdeck.duckdb"
    return DuckDBStore(path, options.statement_timeout_s, options.duckdb_memory_limit)


@contextlib.contextmanager
def _backend_errors(backend: str) -> Iterator[None]:
    """Turn every driver error into a BackendError carrying the backend's reason."""
    try:
        yield
    except (dbapi.Error, adbc_driver_manager.Error) as exc:
        raise _backend_error(backend, exc) from exc


def backend_errors(backend: str) -> contextlib.AbstractContextManager[None]:
    """Driver errors raised inside become BackendErrors, before the transaction ends:
    for a writer that must tell the data's fault from the store's and go on (ingest)."""
    return _backend_errors(backend)


# DuckDB reports most mistakes in a query as INTERNAL, and mid-stream errors reach
# Python as a bare OSError; the error type DuckDB names at the start of every message
# ("Binder Error: ...", its ErrorType) says what happened. Only that label is read,
# never the words after it.
_DUCKDB_TYPE = re.compile(r"^(?P<type>[A-Za-z ]+?) Error: ")
_DUCKDB_USER_TYPES = frozenset(
    {"Binder", "Parser", "Catalog", "Conversion", "Permission", "Invalid Input", "Out of Range"}
)
_DUCKDB_INTERRUPTED = frozenset({"INTERRUPT", "Interrupt"})

# DuckDB sets no SQLSTATE; its error types name the class.
_DUCKDB_SQLSTATES = {
    "Constraint": "23000",
    "Conversion": "22000",
    "Invalid Input": "22000",
    "Out of Range": "22003",
}

# ADBC's status codes that mean the statement itself is wrong.
_INVALID_STATUSES = frozenset(
    {
        AdbcStatusCode.INVALID_ARGUMENT,
        AdbcStatusCode.NOT_FOUND,
        AdbcStatusCode.ALREADY_EXISTS,
        AdbcStatusCode.INVALID_DATA,
        AdbcStatusCode.NOT_IMPLEMENTED,
        AdbcStatusCode.INTEGRITY,
    }
)
_DATA_CLASSES = ("22", "23", "54")  # the data's fault (BackendError.data_refused)
_TIMEOUT_SQLSTATES = frozenset({"57014"})  # query_canceled: statement timeout or cancel
# connection exception (08), operator intervention: shutdown, crash, cannot connect now
_GONE_CLASSES = ("08", "57P")


def _duckdb_type(exc: Exception) -> str | None:
    label = _DUCKDB_TYPE.match(_reason(exc))
    return label.group("type") if label else None


def _sqlstate(exc: Exception, duckdb_type: str | None) -> str | None:
    return getattr(exc, "sqlstate", None) or _DUCKDB_SQLSTATES.get(duckdb_type or "")


def _backend_error(backend: str, exc: Exception) -> BackendError:
    """Classified by what the driver gives: ADBC's status code, the SQLSTATE, and
    DuckDB's error type; never by the words of the message."""
    duckdb_type = _duckdb_type(exc) if backend == "duckdb" else None
    sqlstate = _sqlstate(exc, duckdb_type)
    kind = _kind(getattr(exc, "status_code", None), sqlstate, duckdb_type)
    return BackendError(backend, _reason(exc), kind, sqlstate)


def _kind(status: AdbcStatusCode | None, sqlstate: str | None, duckdb_type: str | None) -> str:
    state = sqlstate or ""
    if state.startswith(_DATA_CLASSES):
        return "invalid"  # before the status: PostgreSQL reports some as IO or INTERNAL
    if state in _TIMEOUT_SQLSTATES or status in (AdbcStatusCode.CANCELLED, AdbcStatusCode.TIMEOUT):
        return "timeout"
    if duckdb_type in _DUCKDB_INTERRUPTED:
        return "timeout"
    if state.startswith(_GONE_CLASSES):
        return "unavailable"
    if state.startswith("42") or status in _INVALID_STATUSES:
        return "invalid"
    if duckdb_type in _DUCKDB_USER_TYPES:
        return "invalid"
    if status in (AdbcStatusCode.IO, AdbcStatusCode.UNAUTHENTICATED):
        return "unavailable"
    return "failed"


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    # ADBC prefixes its own status code; the backend's words are what help.
    for prefix in ("INVALID_ARGUMENT: ", "INTERNAL: ", "IO: ", "INVALID_STATE: ", "UNKNOWN: "):
        text = text.removeprefix(prefix)
    return text


def _stream(
    cursor: dbapi.Cursor,
    sql: str,
    parameters: pa.RecordBatch | None,
    backend: str,
    interrupt: Interrupt | None = None,
) -> Iterator[pa.RecordBatchReader]:
    """Run `sql` on `cursor` and yield its conformed reader; cancel if left early.

    `interrupt` may cancel the statement from another thread while it runs, even
    while `execute` blocks (PostgreSQL's does until the first row is ready)."""
    reader = None
    try:
        with (interrupt or Interrupt()).bound(cursor.adbc_cancel):
            with _backend_errors(backend):
                cursor.execute(sql, parameters)
                reader = _driver_reader(cursor)
            finished = False
            try:
                yield _conformed(reader, backend)
                finished = True
            finally:
                if not finished:
                    with contextlib.suppress(Exception):
                        cursor.adbc_cancel()
    finally:
        # Unbound by now: a late interrupt never reaches a closed statement.
        if reader is not None:
            with contextlib.suppress(Exception):
                reader.close()


def _driver_reader(cursor: dbapi.Cursor) -> pa.RecordBatchReader:
    """The result as the driver's own reader, whose mid-stream errors keep ADBC's
    status code and SQLSTATE (PostgreSQL's statement timeout arrives mid-stream).
    `fetch_record_batch()` returns the bare pyarrow reader beneath it (apache/arrow-adbc
    #1523), whose errors are an OSError with only the text."""
    cursor.fetch_record_batch()  # the checks it makes (executed, not yet consumed)
    return cursor._results.reader  # the wrapper fetch_record_batch() unwraps


def _schema(
    cursor: dbapi.Cursor, sql: str, parameters: pa.RecordBatch | None, backend: str
) -> pa.Schema:
    with _backend_errors(backend):
        try:
            return conform_schema(cursor.adbc_execute_schema(sql, parameters))
        except dbapi.NotSupportedError:
            # DuckDB learns some result types (`SELECT ?`) only by running the query.
            cursor.execute(sql, parameters)
            reader = cursor.fetch_record_batch()
            try:
                return conform_schema(reader.schema)
            finally:
                reader.close()


def _conformed(reader: pa.RecordBatchReader, backend: str) -> pa.RecordBatchReader:
    """The reader in the conformed types; errors raised mid-stream (a timeout, a lost
    connection) become BackendErrors too. One Python layer per batch, not one per job:
    DuckDB hands out 2,048-row vectors, so each layer costs per few hundred KB."""
    schema = conform_schema(reader.schema)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in reader:
                yield conform_batch(batch, schema)
        except (OSError, pa.ArrowException, dbapi.Error, adbc_driver_manager.Error) as exc:
            raise _backend_error(backend, exc) from exc

    return pa.RecordBatchReader.from_batches(schema, batches())


def _transaction(conn: dbapi.Connection, backend: str) -> Iterator[dbapi.Connection]:
    """Lend `conn` for one transaction: the caller commits; anything else rolls back."""
    try:
        with _backend_errors(backend):
            yield conn
    except BaseException:
        with contextlib.suppress(Exception):
            conn.rollback()
        raise


# DuckDB checkpoints once its write-ahead log passes this. Its default, 16 MB,
# fills within one 100 k-event put, so every put paid a checkpoint at COMMIT
# (a fifth of its time); at 256 MB one checkpoint serves several puts.
DUCKDB_CHECKPOINT_THRESHOLD = "256MB"


class DuckDBStore:
    """One embedded DuckDB database per process; a fresh ADBC connection per request.

    External access (files, network, extensions) is disabled for the whole
    database and the configuration locked: even a query that slipped past the
    guard cannot read a file. A client's query (`read`, `schema`) runs only once
    DuckDB's own parse and plan of it show that it reads va_ views and nothing
    else (duckdb_check). Writes are serialised, as DuckDB has one writer.
    """

    backend = "duckdb"
    schema_name = "main"

    def __init__(
        self, path: Path, timeout_s: float = 300.0, memory_limit: str | None = None
    ) -> None:
        import adbc_driver_duckdb

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._timeout_s = timeout_s
        self._write_lock = threading.Lock()
        self._staged: dict[int, threading.Event] = {}  # write connection -> turn held
        self._engine_check = EngineCheck()
        with _backend_errors(self.backend):
            self._db = adbc_driver_manager.AdbcDatabase(
                driver=adbc_driver_duckdb.driver_path(),
                entrypoint="duckdb_adbc_init",
                path=str(path),
                enable_external_access="false",
                autoinstall_known_extensions="false",
                autoload_known_extensions="false",
                # Unset, DuckDB's buffer pool may grow to 80 % of RAM and keeps the
                # blocks queries touched; ingest needs the primary keys' indexes in it.
                **({"memory_limit": memory_limit} if memory_limit else {}),
                checkpoint_threshold=DUCKDB_CHECKPOINT_THRESHOLD,
                lock_configuration="true",
            )

            # The root connection owns the database; requests use clones of it, and
            # closing a clone leaves the database open for the others.
            self._root = dbapi.Connection(self._db, adbc_driver_manager.AdbcConnection(self._db))

    def _connect(self) -> dbapi.Connection:
        with _backend_errors(self.backend):
            return self._root.adbc_clone()

    @contextlib.contextmanager
    def read(
        self,
        sql: str,
        parameters: pa.RecordBatch | None = None,
        *,
        interrupt: Interrupt | None = None,
        replica: bool = False,  # one embedded database: no replicas
    ) -> Iterator[pa.RecordBatchReader]:
        """A client's query, refused (InvalidQuery) unless it reads only va_ views."""
        yield from self._read(sql, parameters, checked=True, interrupt=interrupt)

    @contextlib.contextmanager
    def read_internal(
        self, sql: str, parameters: pa.RecordBatch | None = None
    ) -> Iterator[pa.RecordBatchReader]:
        """flightdeck's own query over its tables and the catalog; never a client's text."""
        yield from self._read(sql, parameters, checked=False)

    def memory_bytes(self) -> int | None:
        """What DuckDB's buffer manager holds in this process, by its own account: the
        part of the server's RSS that is the store's cache (bounded by its memory limit)."""
        with self.read_internal(
            "SELECT CAST(coalesce(sum(memory_usage_bytes), 0) AS BIGINT) AS used "
            "FROM duckdb_memory()"
        ) as reader:
            return reader.read_all().column("used")[0].as_py()

    def _read(
        self,
        sql: str,
        parameters: pa.RecordBatch | None,
        *,
        checked: bool,
        interrupt: Interrupt | None = None,
    ) -> Iterator[pa.RecordBatchReader]:
        conn = self._connect()
        try:
            # The check runs on the query's own connection and transaction, so it
            # sees the catalog the query will, and under the query's deadline.
            with conn.cursor() as cursor, _deadline(cursor, self._timeout_s):
                _read_only(conn, cursor)
                if checked:
                    with _backend_errors(self.backend):
                        self._engine_check.check(cursor, sql, parameters)
                yield from _stream(cursor, sql, parameters, self.backend, interrupt)
        finally:
            conn.close()

    def schema(
        self, sql: str, parameters: pa.RecordBatch | None = None, *, replica: bool = False
    ) -> pa.Schema:
        """A client's query's result schema, refused as `read` refuses it."""
        conn = self._connect()
        try:
            with conn.cursor() as cursor, _deadline(cursor, self._timeout_s):
                _read_only(conn, cursor)
                with _backend_errors(self.backend):
                    self._engine_check.check(cursor, sql, parameters)
                return _schema(cursor, sql, parameters, self.backend)
        finally:
            conn.close()

    def parameter_types(self, sql: str, count: int) -> list[pa.DataType]:
        """What DuckDB's binder expects for each of a client's query's `count`
        parameters (null where it cannot tell), refused as `read` refuses the query."""
        conn = self._connect()
        try:
            with conn.cursor() as cursor, _deadline(cursor, self._timeout_s):
                _read_only(conn, cursor)
                with _backend_errors(self.backend):
                    self._engine_check.check(cursor, sql, None)
                    return duckdb_parameter_types(cursor, sql, count)
        finally:
            conn.close()

    @contextlib.contextmanager
    def write(self, *, staging: bool = False) -> Iterator[dbapi.Connection]:
        """A transaction holding the process's one writer turn.

        With `staging`, the turn is taken only at `end_staging()`: until then the
        transaction may write its own temp tables, so a client streaming a slow
        DoPut does not hold every other writer up while it sends.
        """
        held = threading.Event()
        if not staging:
            self._write_lock.acquire()
            held.set()
        try:
            conn = self._connect()
            self._staged[id(conn)] = held
            try:
                yield from _transaction(conn, self.backend)
            finally:
                del self._staged[id(conn)]
                conn.close()
        finally:
            if held.is_set():
                self._write_lock.release()

    def end_staging(self, conn: dbapi.Connection) -> None:
        """Take the writer turn for a `write(staging=True)` transaction.

        What it staged is committed first (temp tables: the connection keeps them),
        and the transaction restarts once the turn is ours, so that it reads what
        the previous writer committed rather than a snapshot from before the wait.
        """
        held = self._staged[id(conn)]
        if held.is_set():
            return
        with _backend_errors(self.backend):
            conn.commit()
        self._write_lock.acquire()
        held.set()
        with _backend_errors(self.backend):
            conn.rollback()  # nothing to undo: it only starts the transaction afresh

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._root.close()


def _read_only(conn: dbapi.Connection, cursor: dbapi.Cursor) -> None:
    """Start a read-only transaction: DuckDB itself then refuses any write, whatever
    got past the guard and the engine check (a DELETE inside a CTE, say). DuckDB
    has no read-only connections, and a transaction can only begin in autocommit."""
    with _backend_errors("duckdb"):
        conn.adbc_connection.set_autocommit(True)
        cursor.execute("BEGIN TRANSACTION READ ONLY")


@contextlib.contextmanager
def _deadline(cursor: dbapi.Cursor, seconds: float) -> Iterator[None]:
    """DuckDB has no statement timeout: interrupt the query ourselves when it runs long."""
    timer = threading.Timer(seconds, cursor.adbc_cancel)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class _Pool:
    """A small LIFO pool of PostgreSQL connections, each used by one request at a time.

    A request waits at most `wait_s` for a connection, then is refused as
    unavailable: waiting forever would let a few stuck requests freeze the rest.
    """

    def __init__(self, factory, size: int, name: str, wait_s: float, reset=None) -> None:
        self._factory = factory
        self._reset = reset  # run before a used connection goes back; False: close it
        self._idle: queue.LifoQueue[dbapi.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._size = size
        self._name = name
        self._wait_s = wait_s

    @contextlib.contextmanager
    def connection(self) -> Iterator[dbapi.Connection]:
        if not self._slots.acquire(timeout=self._wait_s):
            raise BackendError(
                "postgresql",
                f"no free connection in the {self._name} pool: all {self._size} stayed in use "
                f"for {self._wait_s:g} s (the pool is sized by --pool-size; --pool-timeout "
                "sets the wait); retry shortly",
                "unavailable",
            )
        conn = None
        try:
            conn = self._take()
            yield conn
        except BaseException:
            if conn is not None and not _alive(conn):
                _close_quietly(conn)
                conn = None
                # The backend went away (a restart, a failover): the idle connections
                # were opened to it too. Drop them now, or each would fail one request.
                self.close()
            raise
        finally:
            if conn is not None:
                if self._reset is None or self._reset(conn):
                    self._idle.put(conn)
                else:
                    _close_quietly(conn)
            self._slots.release()

    def _take(self) -> dbapi.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._factory()

    def close(self) -> None:
        while True:
            try:
                _close_quietly(self._idle.get_nowait())
            except queue.Empty:
                return


def _alive(conn: dbapi.Connection) -> bool:
    """After an error: can this connection still serve, or was the backend lost?"""
    try:
        if not conn._autocommit:  # a failed transaction must end before reuse
            conn.rollback()
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
        return True
    except Exception:
        return False


def _close_quietly(conn: dbapi.Connection) -> None:
    with contextlib.suppress(Exception):
        conn.close()


def _discard_session(conn: dbapi.Connection) -> bool:
    """Undo whatever a query did to its session (settings, advisory locks, prepared
    statements, temp tables) before the connection serves another. A connection
    left inside a transaction block cannot be reset: the pool closes it."""
    try:
        with conn.cursor() as cursor:
            cursor.execute("DISCARD ALL")
        return True
    except Exception:
        return False


class PostgresStore:
    """PostgreSQL through adbc-driver-postgresql, with separate read and write pools.

    Read connections log in as the least-privilege reader role (reader_role.py),
    read-only with a statement timeout set at login, so every query runs in a
    read-only transaction that cannot hang; the session is discarded after each
    query. Write connections use the --db URL, which owns the tables.
    """

    backend = "postgresql"
    schema_name = "public"

    def __init__(self, uri: str, options: StoreOptions) -> None:
        import adbc_driver_postgresql.dbapi as pg

        self._uri = uri
        self._read_db = options.read_db
        self._read_uri: str | None = None  # set up on the first read, after migrations
        self._read_setup = threading.Lock()
        self._pg = pg
        self._timeout_ms = int(options.statement_timeout_s * 1000)
        wait_s = options.pool_timeout_s
        self._readers = _Pool(
            self._read_connection, options.pool_size, "read", wait_s, _discard_session
        )
        self._writers = _Pool(
            self._write_connection, max(2, options.pool_size // 2), "write", wait_s
        )
        self._replicas = self._open_replicas(options) if options.read_replicas else None
        with self._writers.connection():  # fail fast with the backend's reason
            pass

    def _open_replicas(self, options: StoreOptions) -> Replicas:
        replicas = [
            Replica(
                url,
                _Pool(
                    lambda url=url: self._replica_connection(url),
                    options.pool_size,
                    "replica read",
                    options.pool_timeout_s,
                    _discard_session,
                ),
            )
            for url in options.read_replicas
        ]
        return Replicas(replicas, self._primary_lsn, self._replica_lsn, options.replica_max_lag_s)

    def _replica_connection(self, url: str) -> dbapi.Connection:
        with _backend_errors(self.backend):
            return self._pg.connect(replica_login(self._reader_uri(), url), autocommit=True)

    def _primary_lsn(self) -> int:
        with self.read_internal(PRIMARY_SQL) as reader:
            return parse_lsn(reader.read_all().column("lsn")[0].as_py())

    def _replica_lsn(self, replica: Replica) -> int:
        pool = replica.pool
        with pool.connection() as conn, conn.cursor() as cursor, _backend_errors(self.backend):
            cursor.execute(REPLAYED_SQL)
            return parse_lsn(cursor.fetchone()[0])

    @contextlib.contextmanager
    def _reader(self, replica: bool) -> Iterator[dbapi.Connection]:
        """A read connection: a serving replica's when `replica` allows one, else the
        primary's. A replica that cannot lend one is skipped and the primary answers."""
        chosen = self._replicas.pick() if replica and self._replicas else None
        if chosen is not None:
            with contextlib.ExitStack() as stack:
                try:
                    conn = stack.enter_context(chosen.pool.connection())
                except BackendError as exc:
                    self._replicas.failed(chosen, str(exc))
                else:
                    yield conn
                    return
        with self._readers.connection() as conn:
            yield conn

    def _reader_uri(self) -> str:
        # The reader role and its grants come from migrations, which run after the
        # store opens: set the login up on first use (`serve` reads once at start).
        with self._read_setup:
            if self._read_uri is None:
                with self._writers.connection() as owner, _backend_errors(self.backend):
                    try:
                        login = reader_role.reader_url(
                            owner, self._uri, self._read_db, self.schema_name
                        )
                    except BaseException:
                        owner.rollback()
                        raise
                uri = reader_role.with_session(login, self._timeout_ms)
                conn = self._connect_reader(uri)
                try:
                    reader_role.check_reader(conn, self.schema_name)
                finally:
                    conn.close()
                self._read_uri = uri
            return self._read_uri

    def _connect_reader(self, uri: str) -> dbapi.Connection:
        try:
            return self._pg.connect(uri, autocommit=True)
        except (dbapi.Error, adbc_driver_manager.Error) as exc:
            # libpq gives no SQLSTATE for a refused login, whether the password is
            # wrong or the server is shutting down: the owner's login tells them apart.
            if not self._accepts_logins():
                raise _backend_error(self.backend, exc) from exc
            role = reader_role.url_user(uri)
            raise reader_role.ReaderRoleError(role, f"cannot log in: {_reason(exc)}") from exc

    def _accepts_logins(self) -> bool:
        """Whether the server lets the owner (--db) log in now."""
        try:
            self._pg.connect(self._uri, autocommit=True).close()
        except (dbapi.Error, adbc_driver_manager.Error):
            return False
        return True

    def _read_connection(self) -> dbapi.Connection:
        return self._connect_reader(self._reader_uri())

    def _write_connection(self) -> dbapi.Connection:
        with _backend_errors(self.backend):
            return self._pg.connect(self._uri, autocommit=False)

    @contextlib.contextmanager
    def read(
        self,
        sql: str,
        parameters: pa.RecordBatch | None = None,
        *,
        interrupt: Interrupt | None = None,
        replica: bool = False,
    ) -> Iterator[pa.RecordBatchReader]:
        with self._reader(replica) as conn, conn.cursor() as cursor:
            yield from _stream(cursor, sql, parameters, self.backend, interrupt)

    def memory_bytes(self) -> int | None:
        """None: PostgreSQL's memory is its own processes', not this one's."""
        return None

    @contextlib.contextmanager
    def read_internal(
        self, sql: str, parameters: pa.RecordBatch | None = None
    ) -> Iterator[pa.RecordBatchReader]:
        """flightdeck's own query of its tables and catalogs, as the owner; never a
        client's text. Rolled back after: it writes nothing."""
        with self._writers.connection() as conn:
            try:
                with conn.cursor() as cursor:
                    yield from _stream(cursor, sql, parameters, self.backend)
            finally:
                with contextlib.suppress(Exception):
                    conn.rollback()

    def schema(
        self, sql: str, parameters: pa.RecordBatch | None = None, *, replica: bool = False
    ) -> pa.Schema:
        with self._reader(replica) as conn, conn.cursor() as cursor:
            return _schema(cursor, sql, parameters, self.backend)

    def parameter_types(self, sql: str, count: int) -> list[pa.DataType]:
        """What PostgreSQL expects for each of the `count` parameters (null where it
        cannot tell): described as the reader, on a session discarded after."""
        with (
            self._readers.connection() as conn,
            conn.cursor() as cursor,
            _backend_errors(self.backend),
        ):
            return postgres_parameter_types(cursor, sql, count)

    @contextlib.contextmanager
    def write(self, *, staging: bool = False) -> Iterator[dbapi.Connection]:
        """A transaction; writers that must not overlap take turns in SQL (ingest/turns)."""
        with self._writers.connection() as conn:
            yield from _transaction(conn, self.backend)

    def end_staging(self, conn: dbapi.Connection) -> None:
        """Nothing to do: every statement reads what was committed before it began."""

    def close(self) -> None:
        if self._replicas is not None:
            self._replicas.close()
        self._readers.close()
        self._writers.close()
