"""The login throttle on its own: failed attempts per user name, and bounded scrypt work."""

from __future__ import annotations

import threading

import pytest
from flightdeck.flight_server.auth.throttle import LoginsBusy, LoginThrottle, TooManyFailures


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Check:
    """A password check that answers `result` and counts how often it ran."""

    def __init__(self, result: bool) -> None:
        self.result = result
        self.runs = 0

    def __call__(self) -> bool:
        self.runs += 1
        return self.result


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_the_attempt_after_the_allowed_failures_is_refused_without_a_check(clock):
    throttle = LoginThrottle(attempts=3, refill_s=10.0, clock=clock)
    wrong = Check(False)
    assert [throttle.verify("rita", wrong) for _ in range(3)] == [False] * 3
    right = Check(True)
    with pytest.raises(TooManyFailures, match=r"too many failed logins for 'rita'; retry in 10 s"):
        throttle.verify("rita", right)
    assert (wrong.runs, right.runs) == (3, 0)
    assert throttle.verify("alice", right)  # another name is not locked out


def test_one_more_attempt_each_refill_period(clock):
    throttle = LoginThrottle(attempts=2, refill_s=10.0, clock=clock)
    for _ in range(2):
        throttle.verify("rita", Check(False))
    clock.now += 4
    with pytest.raises(TooManyFailures) as refused:
        throttle.verify("rita", Check(True))
    assert refused.value.retry_after == 6 and refused.value.key == "rita"
    clock.now += 6
    assert throttle.verify("rita", Check(True))
    throttle.verify("rita", Check(False))
    with pytest.raises(TooManyFailures):
        throttle.verify("rita", Check(True))


def test_successful_logins_cost_no_attempt(clock):
    throttle = LoginThrottle(attempts=2, refill_s=10.0, clock=clock)
    assert all(throttle.verify("rita", Check(True)) for _ in range(10))
    assert [throttle.verify("rita", Check(False)) for _ in range(2)] == [False, False]
    with pytest.raises(TooManyFailures):
        throttle.verify("rita", Check(True))


def test_an_attempt_in_flight_counts_until_it_succeeds(clock):
    """A parallel flood cannot all pass the check before the first failure is recorded."""
    throttle = LoginThrottle(attempts=1, refill_s=10.0, concurrent=2, clock=clock)
    started, release = threading.Event(), threading.Event()

    def slow_wrong() -> bool:
        started.set()
        release.wait(10)
        return False

    first = threading.Thread(target=throttle.verify, args=("rita", slow_wrong))
    first.start()
    assert started.wait(10)
    second = Check(False)
    with pytest.raises(TooManyFailures):
        throttle.verify("rita", second)
    release.set()
    first.join(10)
    assert second.runs == 0


def test_checks_beyond_the_concurrency_bound_wait_then_are_refused_busy(clock):
    throttle = LoginThrottle(attempts=5, refill_s=10.0, concurrent=1, wait_s=0.2, clock=clock)
    started, release = threading.Event(), threading.Event()

    def slow_right() -> bool:
        started.set()
        release.wait(10)
        return True

    holder = threading.Thread(target=throttle.verify, args=("alice", slow_right))
    holder.start()
    assert started.wait(10)
    blocked = Check(True)
    with pytest.raises(LoginsBusy, match="too many logins in progress"):
        throttle.verify("rita", blocked)
    release.set()
    holder.join(10)
    assert blocked.runs == 0
    # The refused attempt was not counted as a failure against rita.
    assert [throttle.verify("rita", Check(False)) for _ in range(5)] == [False] * 5


def test_the_names_it_remembers_are_bounded(clock):
    throttle = LoginThrottle(attempts=2, refill_s=10.0, max_names=10, clock=clock)
    for i in range(100):
        throttle.verify(f"user-{i}", Check(False))
    assert throttle.tracked <= 10
    # The most recent failures are the ones kept.
    throttle.verify("user-99", Check(False))
    with pytest.raises(TooManyFailures):
        throttle.verify("user-99", Check(False))
