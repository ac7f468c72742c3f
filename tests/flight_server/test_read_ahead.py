"""The read-ahead thread: order kept, errors raised in the reader, the source closed once."""

from __future__ import annotations

import threading
import time

import pytest
from flightdeck.flight_server.read_ahead import ReadAhead, Stalled


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

    def finish(self, ended: bool) -> None:
        self.finishes += 1
        self.ended = ended
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


def test_finish_says_whether_the_source_ran_to_its_end():
    whole = _Source(10)
    assert list(ReadAhead(whole, whole.finish)) == list(range(10))
    assert whole.finished.wait(5) and whole.ended is True
    left = _Source(10**9)
    ahead = iter(ReadAhead(left, left.finish, depth=2))
    next(ahead)
    ahead.close()
    assert left.finished.wait(5) and left.ended is False  # so the owner cancels, not drains


def test_a_reader_that_stops_taking_is_given_up_and_told_why():
    source = _Source(10**9)
    ahead = iter(ReadAhead(source, source.finish, depth=2, idle_timeout=0.3))
    assert next(ahead) == 0
    # The reader takes nothing now: the source is closed although nobody said stop.
    assert source.finished.wait(5) and source.ended is False
    with pytest.raises(Stalled, match=r"0\.3 s"):
        next(ahead)  # a reader that comes back hears why, never a short result


def test_a_slow_reader_that_keeps_taking_is_never_given_up():
    source = _Source(40)
    seen = []
    for item in ReadAhead(source, source.finish, depth=2, idle_timeout=0.3):
        seen.append(item)
        time.sleep(0.05)  # 2 s in all, far past the idle timeout
    assert seen == list(range(40))
    assert source.ended is True


def test_a_cancelled_call_ends_a_reader_that_waits_for_a_slow_source():
    class _Slow(_Source):
        def __iter__(self):
            yield 0
            time.sleep(30)  # an aggregate: its one batch comes at the end
            yield 1

    source = _Slow(0)
    cancelled = threading.Event()
    ahead = iter(ReadAhead(source, source.finish, cancelled=cancelled.is_set))
    assert next(ahead) == 0
    threading.Timer(0.2, cancelled.set).start()
    started = time.monotonic()
    assert list(ahead) == []
    assert time.monotonic() - started < 5
