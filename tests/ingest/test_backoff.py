"""The one retry policy of the NATS runtime: how long to wait, and which failures to log."""

from __future__ import annotations

import pytest
from flightdeck.ingest.backoff import Backoff


def _delays(backoff: Backoff, n: int) -> list[float]:
    return [backoff.failed().delay for _ in range(n)]


def test_the_delay_doubles_from_the_first_up_to_the_cap():
    backoff = Backoff(first_s=0.2, cap_s=5.0)
    assert _delays(backoff, 8) == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])


def test_a_long_outage_stays_at_the_cap():
    backoff = Backoff(first_s=0.2, cap_s=5.0)
    assert _delays(backoff, 10_000)[-1] == 5.0  # no overflow after many failures


def test_a_success_starts_the_sequence_again():
    backoff = Backoff(first_s=0.2, cap_s=5.0)
    _delays(backoff, 6)
    backoff.succeeded()
    retry = backoff.failed()
    assert (retry.delay, retry.failures, retry.log) == (pytest.approx(0.2), 1, True)


def test_the_first_failure_and_then_every_nth_are_worth_logging():
    backoff = Backoff(log_every=10)
    logged = [retry.failures for retry in (backoff.failed() for _ in range(35)) if retry.log]
    assert logged == [1, 10, 20, 30]


def test_after_a_success_the_next_failure_is_logged_at_once():
    backoff = Backoff(log_every=10)
    assert [backoff.failed().log for _ in range(3)] == [True, False, False]
    backoff.succeeded()
    assert backoff.failed().log


def test_the_defaults_are_the_runtime_policy():
    backoff = Backoff()
    retries = [backoff.failed() for _ in range(10)]
    assert [r.delay for r in retries] == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2] + [5.0] * 5)
    assert [r.failures for r in retries if r.log] == [1, 10]


@pytest.mark.parametrize("bad", [dict(first_s=0), dict(cap_s=0.1), dict(log_every=0)])
def test_a_policy_that_cannot_work_is_refused(bad):
    with pytest.raises(ValueError):
        Backoff(**bad)


def test_until_done_retries_the_listed_errors_and_returns_the_result(monkeypatch):
    import asyncio

    from flightdeck.ingest import backoff

    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(backoff.asyncio, "sleep", no_wait)
    calls, said = [], []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) < 12:
            raise OSError(f"away {len(calls)}")
        return "up"

    def say(retry, error) -> None:
        said.append((retry.failures, str(error)))

    result = asyncio.run(backoff.until_done(attempt, say))
    assert result == "up" and len(calls) == 12
    assert said == [(1, "away 1"), (10, "away 10")]  # the first, then every tenth

    async def wrong() -> None:
        raise ValueError("not retried")

    with pytest.raises(ValueError, match="not retried"):
        asyncio.run(backoff.until_done(wrong, lambda r, e: None, (OSError,)))
