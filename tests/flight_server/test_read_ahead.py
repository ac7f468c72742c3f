"""The read-ahead thread: order kept, errors raised in the reader, the source closed once."""

from __future__ import annotations

import threading
import time

import pytest
from flightdeck.flight_server.read_ahead import ReadAhead


class _Source:
    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.produced = 0
        self.finished = threading.Event()
        self.finishes = 0

    def __iter__(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise ValueError(f"broken at {i}")
            self.produced += 1
            yield i

    def finish(self) -> None:
        self.finishes += 1
        self.finished.set()


def test_items_arrive_in_order_and_the_source_is_closed_once():
    source = _Source(1000)
    assert list(ReadAhead(source, source.finish, depth=3)) == list(range(1000))
    assert source.finished.wait(5)
    assert source.finishes == 1


def test_a_failure_in_the_source_is_raised_to_the_reader_after_the_items_before_it():
    source = _Source(10, fail_at=7)
    seen = []
    with pytest.raises(ValueError, match="broken at 7"):
        for item in ReadAhead(source, source.finish):
            seen.append(item)
    assert seen == list(range(7))
    assert source.finished.wait(5)


def test_a_reader_that_leaves_stops_the_thread_within_a_few_items():
    source = _Source(10**9)
    ahead = iter(ReadAhead(source, source.finish, depth=2))
    assert [next(ahead), next(ahead)] == [0, 1]
    ahead.close()  # what a client that goes away does to the stream's generator
    assert source.finished.wait(5)
    produced = source.produced
    time.sleep(0.3)
    assert source.produced == produced <= 2 + 2 + 1  # taken, queued, one in hand


def test_stop_before_the_first_read_closes_the_source():
    source = _Source(10**9)
    ReadAhead(source, source.finish, depth=2).stop()
    assert source.finished.wait(5)
    assert source.finishes == 1
