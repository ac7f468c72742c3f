"""Which deliveries of a message this process received, so that a redelivery can be told apart.

JetStream's delivery count goes up for every redelivery, whatever the cause: our
own nak, a NATS server that restarted while we held the message (the ack, or the
message, was lost with the connection), or a worker that went away holding it.
Only the last is a death the worker must be careful about (`attempts.py`). This
process is alive, so every delivery it received itself is not a death:
deaths = delivery count - deliveries received here.

Acks are not confirmed (nats-py publishes them), and a nats-server that was
killed restarts from consumer state it saved a while before: it may redeliver
messages we acked tens of thousands of messages ago. So what was received is
kept past the ack, as ranges of stream sequences (they arrive mostly in order,
so a long run costs one range), with a count for the few received again.

The server counts a message delivered when it sends it: what was on its way to
us when the connection dropped (or to a pull subscription we closed) never
arrived, yet comes back with one more delivery. The puller reports how many a
pull request may have lost (`lost`); that many redeliveries are taken for those
lost ones. At worst this excuses one real death per lost delivery, which only
defers the careful path to the next death: nothing is counted wrongly.
"""

from __future__ import annotations

from bisect import bisect_right

from nats.aio.msg import Msg

from .pull import ack_numbers

__all__ = ["Deliveries"]

_RANGES = 100_000  # runs of sequences remembered; the oldest go first
_AGAIN = 100_000  # messages remembered as received more than once


class Deliveries:
    def __init__(self) -> None:
        self._starts: list[int] = []  # disjoint runs [start, end] of sequences received
        self._ends: list[int] = []
        self._again: dict[int, int] = {}  # sequence -> deliveries received beyond the first
        self._lost = 0  # deliveries sent to us that may never have arrived

    def lost(self, count: int) -> None:
        """Up to `count` deliveries to us may have been lost in transit."""
        self._lost = min(self._lost + max(0, count), _AGAIN)

    def received(self, message: Msg) -> None:
        delivered, sequence = ack_numbers(message)
        if not self._add(sequence):
            self._count_again(sequence)
        if self._lost and delivered > self._received(sequence):
            self._lost -= 1  # most likely one of ours that never arrived
            self._count_again(sequence)

    def deaths(self, message: Msg) -> int:
        """Deliveries of this message that ended in another process that went away."""
        delivered, sequence = ack_numbers(message)
        return max(0, delivered - self._received(sequence))

    def _received(self, sequence: int) -> int:
        index = bisect_right(self._starts, sequence) - 1
        first = 1 if index >= 0 and sequence <= self._ends[index] else 0
        return first + self._again.get(sequence, 0)

    def _count_again(self, sequence: int) -> None:
        self._again[sequence] = self._again.pop(sequence, 0) + 1  # now the most recent
        if len(self._again) > _AGAIN:
            del self._again[next(iter(self._again))]

    def _add(self, sequence: int) -> bool:
        """Add a first delivery to the runs; False if it was received before."""
        starts, ends = self._starts, self._ends
        index = bisect_right(starts, sequence) - 1
        if index >= 0 and sequence <= ends[index]:
            return False
        joins_left = index >= 0 and ends[index] == sequence - 1
        joins_right = index + 1 < len(starts) and starts[index + 1] == sequence + 1
        if joins_left and joins_right:
            ends[index] = ends.pop(index + 1)
            del starts[index + 1]
        elif joins_left:
            ends[index] = sequence
        elif joins_right:
            starts[index + 1] = sequence
        else:
            starts.insert(index + 1, sequence)
            ends.insert(index + 1, sequence)
            if len(starts) > _RANGES:
                del starts[0], ends[0]
        return True
