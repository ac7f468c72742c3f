"""Telling a worker's death from a NATS restart, against a real nats-server restarted.

A redelivery after the NATS server restarted is not a death: the worker that
received the message is alive and must not take the slow path (one message at a
time under a marker) for the tens of thousands it held. Another process that
sees the same redelivery has never received the message: to it, a worker died.
"""

from __future__ import annotations

import asyncio

import nats
from flightdeck.ingest.deliveries import Deliveries
from flightdeck.ingest.pull import Puller, delivery_count
from flightdeck.ingest.streams import EVENTS
from nats.aio.msg import Msg

from tests.faults.processes import KillableNats
from tests.ingest.numbered_messages import numbered_messages

_CONSUMER = "deliveries-test"
_HELD = 50


async def _puller(url: str, deliveries: Deliveries) -> tuple[nats.NATS, Puller]:
    nc = await nats.connect(url)
    return nc, await Puller(nc, EVENTS.name, _CONSUMER, deliveries=deliveries).start()


async def _fetch_all(puller: Puller) -> list:
    out: list = []
    while len(out) < _HELD:
        batch = await puller.fetch(_HELD - len(out), timeout=10, linger=0.1)
        assert batch, f"only {len(out)} of {_HELD} messages came back"
        out += batch
    return out


async def _setup(url: str) -> None:
    nc = await nats.connect(url)
    # ack_wait 1 s: what was held at the kill comes back a second later
    await numbered_messages(nc, _CONSUMER, _HELD, ack_wait=1.0)
    await nc.close()


def test_a_nats_restart_is_no_death_but_another_process_sees_one(tmp_path):
    server = KillableNats(tmp_path / "nats").start()
    restarted = None
    try:
        asyncio.run(_setup(server.url))
        alive = Deliveries()

        async def hold() -> list:
            nc, puller = await _puller(server.url, alive)
            held = await _fetch_all(puller)  # received, never acked
            await nc.close()
            return held

        held = asyncio.run(hold())
        assert [alive.deaths(m) for m in held] == [0] * _HELD
        server.stop()  # a clean stop keeps the consumer's delivery counts; a kill may not
        restarted = KillableNats(server.store_dir, port=server.port).start()

        async def again(deliveries: Deliveries) -> list:
            nc, puller = await _puller(restarted.url, deliveries)
            back = await _fetch_all(puller)
            for message in back:
                await message.nak()  # for the next reader, at once
            await nc.flush()
            await nc.close()
            return back

        back = asyncio.run(again(alive))
        assert [delivery_count(m) for m in back] == [2] * _HELD  # a real redelivery
        assert [alive.deaths(m) for m in back] == [0] * _HELD  # but not a death
        stranger = asyncio.run(again(Deliveries()))
        assert all(delivery_count(m) >= 3 for m in stranger)
        # A newcomer received only the last delivery: the ones before ended elsewhere.
        newcomer = Deliveries()
        for message in stranger:
            newcomer.received(message)
        assert [newcomer.deaths(m) for m in stranger] == [delivery_count(m) - 1 for m in stranger]
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()


def _message(sequence: int, delivered: int) -> Msg:
    reply = f"$JS.ACK.EVENTS.c.{delivered}.{sequence}.{sequence}.1700000000000000000.0"
    return Msg(None, subject="events.pageview", reply=reply, data=b"{}")


def test_deliveries_lost_on_their_way_to_us_are_no_deaths():
    deliveries = Deliveries()
    deliveries.lost(2)  # a pull request ended silently with two messages still due
    for sequence in (7, 8, 9):
        deliveries.received(_message(sequence, 2))
    assert [deliveries.deaths(_message(s, 2)) for s in (7, 8, 9)] == [0, 0, 1]
    assert deliveries.deaths(_message(7, 2)) == 0  # asked again, the same answer


def test_messages_acked_long_ago_are_still_known_when_a_stale_server_redelivers():
    deliveries = Deliveries()
    for sequence in range(1, 300_001):
        deliveries.received(_message(sequence, 1))
    # A killed nats-server restarted from state saved 290,000 messages earlier.
    for sequence in range(10_001, 10_101):
        deliveries.received(_message(sequence, 2))
    assert {deliveries.deaths(_message(s, 2)) for s in range(10_001, 10_101)} == {0}
    deliveries.received(_message(300_001, 2))
    assert deliveries.deaths(_message(300_001, 2)) == 1  # its first delivery was not ours


def test_out_of_order_arrivals_join_up():
    deliveries = Deliveries()
    order = [5, 3, 9, 4, 1, 2, 8, 6, 7, 3]  # 3 comes twice
    for sequence in order:
        deliveries.received(_message(sequence, order[: order.index(sequence)].count(sequence) + 1))
    assert [deliveries.deaths(_message(s, 1)) for s in range(1, 10)] == [0] * 9
    assert deliveries.deaths(_message(3, 2)) == 0
    assert [deliveries.deaths(_message(s, 2)) for s in (1, 2, 4, 9)] == [1] * 4
    assert deliveries.deaths(_message(10, 1)) == 1
