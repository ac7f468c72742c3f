"""A contender's reads in a child process: the rows, the content and the first batch come back."""

from __future__ import annotations

import threading

import pytest

from benchmarks import data
from benchmarks.checksum import checksum
from benchmarks.memory_server import MemoryServer
from benchmarks.reader import Reader, ReaderFailed, ReadSpec


@pytest.fixture
def served():
    table = data.events(3_000)
    server = MemoryServer(table.to_batches(max_chunksize=1_000), table.schema)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield table, f"grpc://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join()


def test_the_warm_up_round_brings_the_content_checksum(served):
    table, location = served
    with Reader(ReadSpec("doget", location)) as reader:
        warm = reader.read(-1)
        timed = reader.read(0)
    assert warm.rows == timed.rows == 3_000
    assert warm.checksum == checksum(table)
    assert warm.arrow_bytes == pytest.approx(table.nbytes, rel=0.01)  # padding may differ
    # Timed rounds carry no checksum (it is off the clock, once) but do time the first batch.
    assert timed.checksum is None
    assert 0 < timed.first_batch_s <= timed.seconds
    assert reader.backend_pid is None


def test_a_pandas_read_has_no_first_batch(served):
    table, location = served
    with Reader(ReadSpec("doget_pandas", location)) as reader:
        got = reader.read(-1)
    assert got.rows == 3_000
    assert got.first_batch_s is None
    assert got.checksum == checksum(table)


def test_a_reader_that_cannot_connect_says_why():
    with pytest.raises(ReaderFailed, match="no reader 'nonsense'"):
        Reader(ReadSpec("nonsense", "x"))


def test_a_failed_read_is_raised_in_the_parent():
    # Flight connects lazily: the reader starts, and its first read finds no server.
    with Reader(ReadSpec("doget", "grpc://127.0.0.1:1")) as reader:
        with pytest.raises(ReaderFailed, match="FlightUnavailableError"):
            reader.read(0)
