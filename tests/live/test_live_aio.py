"""flightdeck.aio.subscribe: live messages in an asyncio program, the loop never blocked,
the stream closed on cancel (both backends)."""

from __future__ import annotations

import asyncio
import time

import pytest
from flightdeck import Client, QueryError, aio

from tests.flight_server.test_live import _put

# A live server per test: make test runs them; a bare pytest keeps its 5 minutes (README).
pytestmark = pytest.mark.slow

DAILY = "va_pageview_aggregate"


async def _ticks_while(awaitable, period: float = 0.01) -> tuple[object, int]:
    """Run `awaitable` while counting the loop's ticks: a blocked loop counts none."""
    ticks = 0
    done = False

    async def tick() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(period)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        return await awaitable, ticks
    finally:
        done = True
        await ticker


def test_async_subscribe_yields_the_snapshot_then_changes_and_stops_on_cancel(
    live_client, live_server
):
    _put(live_client._flight, ["/x"])

    async def follow() -> list[str]:
        kinds: list[str] = []
        async for message in aio.subscribe(live_client, DAILY, messages=2):
            kinds.append(message.kind)
            if message.kind == "snapshot_end":
                await asyncio.to_thread(_put, live_client._flight, ["/y"], "t")
            if message.kind == "upsert":
                assert message.table.column("page_url").to_pylist() == ["/y"]
                return kinds
        return kinds

    kinds, ticks = asyncio.run(_ticks_while(asyncio.wait_for(follow(), 20)))
    assert [k for k in kinds if k != "heartbeat"] == ["snapshot", "snapshot_end", "upsert"]
    assert ticks > 0  # the loop ran while the stream was read

    async def cancelled() -> float:
        task = asyncio.create_task(_drain(live_client))
        await asyncio.sleep(1.0)  # a snapshot, then quiet: the task waits on the queue
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(cancelled()) < 2
    # The cancelled call is gone from the server: its subscriber count falls to 0.
    assert _no_subscribers(live_server)


async def _drain(live_client: Client) -> None:
    async for _message in aio.subscribe(live_client, DAILY):
        pass


def _no_subscribers(live_server, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live_server.hub.subscribers == 0:
            return True
        time.sleep(0.1)
    return False


def test_async_subscribe_raises_a_refusal(live_client):

    async def refused() -> None:
        async for _message in aio.subscribe(live_client, "va_nope"):
            pass

    with pytest.raises(QueryError):
        asyncio.run(asyncio.wait_for(refused(), 20))
