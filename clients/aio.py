"""Live subscriptions for asyncio programs: `async for message in flightdeck.aio.subscribe(...)`.

A Flight stream blocks, so a thread reads it and hands each message to the event
loop through a bounded asyncio.Queue: a slow consumer holds the thread back (and
the server then retires the subscription alone, with a cursor to resume from),
it never fills memory. Cancelling the consuming task, or leaving the `async for`,
ends the call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client, LiveMessage, LiveSubscription

__all__ = ["subscribe"]

_END = object()  # the stream ended
_POLL_S = 0.2  # how often a thread waiting for room checks whether the consumer left


async def subscribe(
    client: Client, view: str, *, queue_size: int = 256, **options: Any
) -> AsyncIterator[LiveMessage]:
    """LiveMessage objects of `client.subscribe(view, **options)`, without blocking the loop.

    At most `queue_size` messages wait for the consumer. Errors (a refusal, a broken
    stream) are raised here; resume with the last message's `cursor` and
    `detail["lifetime"]`. For a table kept by key that resumes by itself, see
    LiveTable.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
    subscription = await asyncio.to_thread(client.subscribe, view, **options)
    leaving = threading.Event()
    reader = threading.Thread(
        target=_pump, args=(subscription, loop, queue, leaving), name=f"aio {view}", daemon=True
    )
    reader.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        leaving.set()
        subscription.cancel()  # the thread's read raises, and it ends


def _pump(
    subscription: LiveSubscription,
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue,
    leaving: threading.Event,
) -> None:
    """Read the stream on this thread; hand each message, then the end or the error, over."""
    with subscription:
        try:
            for message in subscription:
                if not _hand_over(message, loop, queue, leaving):
                    return
            last: object = _END
        except Exception as exc:
            last = exc
        if not leaving.is_set():
            _hand_over(last, loop, queue, leaving)


def _hand_over(
    item: object, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, leaving: threading.Event
) -> bool:
    """Put `item` on the loop's queue, waiting for room; False if the consumer left."""
    try:
        put = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
    except RuntimeError:  # the loop is closed
        return False
    while not leaving.is_set():
        with contextlib.suppress(concurrent.futures.TimeoutError):
            try:
                put.result(_POLL_S)
            except concurrent.futures.CancelledError:  # the loop is shutting down
                return False
            return True
    put.cancel()
    return False
