"""Each read contender in a child process of its own, so no contender reads in another's memory.

A 1.8 GB read takes 0.7 s or 1.8 s from the same server depending on whether the
reading process's allocator still holds freed pages or must fault new ones in (page
faults are expensive in this microVM). With every contender reading in the one
benchmark process, each read paid for what the previous contender left behind, and
the in-memory ceiling read 10 M rows in 1.44 s in the DuckDB rounds and 0.69 s in the
PostgreSQL rounds. Here each contender keeps one process (and one connection) for all
its rounds of one comparison, so its warm-up round warms its own process, and every
contender is measured in the same state: warm, alone in its memory.

The child times itself (the parent's pipe round trip stays off the clock) and sends
back seconds, rows, the time to the first batch and, in the warm-up round, the
content checksum (checksum.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import traceback
from dataclasses import dataclass
from typing import Any

__all__ = ["ReadOutcome", "ReadSpec", "Reader"]

VIEW = "va_pageview_event"
SQL = f"SELECT * FROM {VIEW}"


@dataclass(frozen=True)
class ReadSpec:
    """`how`: doget | doget_pandas | flightsql | adbc_duckdb | adbc_postgresql | psycopg_pandas;
    `target`: a Flight location, a DuckDB file or a PostgreSQL URL."""

    how: str
    target: str


@dataclass(frozen=True)
class ReadOutcome:
    seconds: float
    rows: int
    first_batch_s: float | None
    checksum: dict[str, int] | None  # the warm-up round's only
    arrow_bytes: int | None  # of an Arrow result, in the warm-up round


class ReaderFailed(RuntimeError):
    """The child's read raised; its traceback is the message."""


class Reader:
    """`read(r)` runs round `r` (negative: the warm-up round, checksummed) in the child."""

    def __init__(self, spec: ReadSpec) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(spec, child_end), daemon=True)
        self._process.start()
        child_end.close()
        # Connected before any clock starts; a PostgreSQL reader names its backend, so
        # that the server's own backends can be told apart from the contenders'.
        self.backend_pid: int | None = self._expect(self._pipe.recv())

    def read(self, r: int) -> ReadOutcome:
        self._pipe.send(r)
        return self._expect(self._pipe.recv())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send(None)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._pipe.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _expect(message: Any) -> Any:
        if isinstance(message, ReaderFailed):
            raise message
        return message


def _serve(spec: ReadSpec, pipe) -> None:
    try:
        with _connected(spec) as (read, backend_pid):
            pipe.send(backend_pid)
            while (r := pipe.recv()) is not None:
                pipe.send(_round(read, r))
    except Exception:  # the parent must learn why, not wait on a dead pipe
        pipe.send(ReaderFailed(traceback.format_exc()))


def _round(read, r: int) -> ReadOutcome | ReaderFailed:
    from .checksum import checksum

    try:
        start = time.perf_counter()
        result, first_batch_s = read()
        seconds = time.perf_counter() - start
    except Exception:
        return ReaderFailed(traceback.format_exc())
    import pyarrow as pa

    is_table = isinstance(result, pa.Table)
    rows = result.num_rows if is_table else len(result)
    warmup = r < 0
    return ReadOutcome(
        seconds=seconds,
        rows=rows,
        first_batch_s=first_batch_s,
        checksum=checksum(result) if warmup else None,
        arrow_bytes=result.nbytes if warmup and is_table else None,
    )


@contextlib.contextmanager
def _connected(spec: ReadSpec):
    """Yields (a function returning (result, seconds to the first batch or None),
    the PostgreSQL backend pid of the connection or None)."""
    if spec.how in ("doget", "doget_pandas"):
        import pyarrow.flight as flight

        client = flight.connect(spec.target)
        try:
            if spec.how == "doget":
                yield (lambda: _doget(client)), None
            else:
                yield (lambda: (_doget(client)[0].to_pandas(), None)), None
        finally:
            client.close()
    elif spec.how == "psycopg_pandas":
        import psycopg

        with psycopg.connect(spec.target, autocommit=True) as conn:
            yield (lambda: (_psycopg_frame(conn), None)), _backend_pid(conn)
    else:
        conn = _adbc(spec)
        try:
            pid = _backend_pid(conn) if spec.how == "adbc_postgresql" else None
            yield (lambda: _sql_read(conn)), pid
        finally:
            conn.close()


def _backend_pid(conn) -> int:
    from .backend_memory import backend_pid

    return backend_pid(conn)


def _adbc(spec: ReadSpec):
    if spec.how == "flightsql":
        import adbc_driver_flightsql.dbapi as driver

        return driver.connect(spec.target)
    if spec.how == "adbc_duckdb":
        import adbc_driver_duckdb.dbapi as driver

        return driver.connect(spec.target)
    if spec.how == "adbc_postgresql":
        import adbc_driver_postgresql.dbapi as driver

        return driver.connect(spec.target, autocommit=True)
    raise ValueError(f"no reader {spec.how!r}")


def _doget(client):
    import pyarrow as pa
    import pyarrow.flight as flight

    start = time.perf_counter()
    info = client.get_flight_info(flight.FlightDescriptor.for_path(VIEW))
    reader = client.do_get(info.endpoints[0].ticket)
    try:
        first = reader.read_chunk().data
    except StopIteration:
        return info.schema.empty_table(), None
    first_s = time.perf_counter() - start
    rest = reader.read_all()
    return pa.concat_tables([pa.Table.from_batches([first]), rest]), first_s


def _sql_read(conn):
    import pyarrow as pa

    with conn.cursor() as cursor:
        start = time.perf_counter()
        cursor.execute(SQL)
        reader = cursor.fetch_record_batch()
        try:
            first = reader.read_next_batch()
        except StopIteration:
            return reader.read_all(), None
        first_s = time.perf_counter() - start
        rest = reader.read_all()
        return pa.concat_tables([pa.Table.from_batches([first]), rest]), first_s


def _psycopg_frame(conn):
    """What a notebook does today: fetch rows as tuples, build a DataFrame."""
    import pandas as pd

    with conn.cursor() as cursor:
        cursor.execute(SQL)
        rows = cursor.fetchall()
        columns = [d.name for d in cursor.description]
    return pd.DataFrame(rows, columns=columns)
