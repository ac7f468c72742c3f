"""The batch puller against a real nats-server: batches, buffering, and what close gives back."""

from __future__ import annotations

import asyncio

import nats
import pytest
from flightdeck.ingest.pull import Puller, PullError, ack_all, ack_numbers, stream_sequence
from flightdeck.ingest.streams import EVENTS
from nats.aio.msg import Msg

from tests.ingest.numbered_messages import numbered_messages

_CONSUMER = "puller-test"


@pytest.mark.parametrize(
    ("reply", "sequence"),
    [
        ("$JS.ACK.EVENTS.flightdeck-ingest.1.4711.12.1700000000000000000.3", 4711),
        # With a domain and an account hash, as newer servers send.
        ("$JS.ACK.hub.ACCHASH.EVENTS.flightdeck-ingest.2.4712.13.1700000000000000000.0", 4712),
        ("$JS.ACK.hub.ACCHASH.EVENTS.flightdeck-ingest.2.4713.13.1700000000000000000.0.x", 4713),
    ],
)
def test_the_stream_sequence_is_read_from_the_ack_subject(reply: str, sequence: int):
    message = Msg(None, subject="events.pageview", reply=reply, data=b"{}")
    assert stream_sequence(message) == sequence
    assert stream_sequence(message) == message.metadata.sequence.stream  # as nats-py reads it
    assert ack_numbers(message) == (message.metadata.num_delivered, sequence)


async def _setup(url: str, n: int) -> tuple[nats.NATS, Puller]:
    nc = await nats.connect(url)
    # ack_wait 30 s, longer than the test: a redelivery within it came from a nak
    await numbered_messages(nc, _CONSUMER, n, ack_wait=30.0)
    return nc, await Puller(nc, EVENTS.name, _CONSUMER).start()


def test_batches_come_in_order_and_nothing_is_skipped(nats_server):
    async def go() -> list[bytes]:
        nc, puller = await _setup(nats_server.url, 250)
        seen: list[bytes] = []
        while len(seen) < 250:
            batch = await puller.fetch(40, timeout=5, linger=0.05)
            assert 0 < len(batch) <= 40
            seen += [m.data for m in batch]
            for m in batch:
                await m.ack()
        assert await puller.fetch(40, timeout=0.3, linger=0.05) == []  # nothing left
        await puller.close()
        await nc.close()
        return seen

    assert asyncio.run(go()) == [str(i).encode() for i in range(250)]


def test_close_gives_back_what_was_received_but_not_handed_out(nats_server):
    async def go() -> tuple[list[bytes], list[bytes]]:
        nc, first = await _setup(nats_server.url, 10)
        handed = await first.fetch(3, timeout=5, linger=0.05)
        await asyncio.sleep(0.2)  # the next batch was asked for: it arrives meanwhile
        await first.close()  # nak'd: back at once, not after the 30 s ack wait
        second = await Puller(nc, EVENTS.name, _CONSUMER).start()
        again = await second.fetch(10, timeout=5, linger=0.3)
        await second.close()
        await nc.close()
        return [m.data for m in handed], [m.data for m in again]

    handed, again = asyncio.run(go())
    assert handed == [b"0", b"1", b"2"]
    assert sorted(again, key=int) == [str(i).encode() for i in range(3, 10)]


def test_a_deleted_consumer_is_an_error_for_the_caller(nats_server):
    async def go() -> None:
        nc, puller = await _setup(nats_server.url, 0)
        await nc.jetstream().delete_consumer(EVENTS.name, _CONSUMER)
        try:
            with pytest.raises(PullError) as raised:
                await puller.fetch(10, timeout=3, linger=0.05)
            assert raised.value.status in ("409", "503")  # consumer deleted, or no responders
        finally:
            await puller.close()
            await nc.close()

    asyncio.run(go())


class _PublicOnly:
    """A client as a nats-py without the private methods ack_all joins acks with."""

    is_connected = True


@pytest.mark.parametrize("client", ["nats-py", "public only"])
def test_ack_all_acks_every_message_given_and_no_other(nats_server, monkeypatch, client):
    # Small writes, so that a batch takes several. The last 10 stay unacked: pending.
    monkeypatch.setattr("flightdeck.ingest.pull._ACKS_PER_WRITE", 64)

    async def go() -> tuple[int, list[bytes]]:
        nc, puller = await _setup(nats_server.url, 1010)
        kept: list[Msg] = []
        while len(kept) < 10:
            batch = await puller.fetch(500, timeout=5, linger=0.2)
            assert batch
            unacked = [m for m in batch if int(m.data) >= 1000]
            acker = nc if client == "nats-py" else _PublicOnly()
            await ack_all(acker, [m for m in batch if int(m.data) < 1000])
            kept += unacked
        await nc.flush()
        info = await nc.jetstream().consumer_info(EVENTS.name, _CONSUMER)
        await puller.close()
        await nc.close()
        return info.num_ack_pending, sorted(m.data for m in kept)

    pending, unacked = asyncio.run(go())
    assert pending == 10
    assert unacked == sorted(str(i).encode() for i in range(1000, 1010))
