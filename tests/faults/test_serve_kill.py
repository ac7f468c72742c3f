"""Fault 4: `flightdeck serve` SIGKILLed during a large DoPut, on both backends.

After a restart on the same store the put is all or nothing; re-sending it
then gives exact counts, and the aggregates equal the reference
recomputation of what the store holds.
"""

from __future__ import annotations

import contextlib
import json
import random
import time

import pyarrow as pa
import pyarrow.flight as flight

from .processes import Flightdeck
from .workload import assert_exact, count, flight_query, pageviews

PUT = flight.FlightDescriptor.for_path("events", "pageview")
ROWS = 200_000
BATCH = 5_000
CALL = flight.FlightCallOptions(timeout=120)


def _send(location: str, table: pa.Table) -> dict:
    """Send `table` as one put; the server's reply."""
    with flight.connect(location) as client:
        writer, meta = client.do_put(PUT, table.schema, CALL)
        writer.write_table(table, max_chunksize=BATCH)
        writer.done_writing()
        reply = meta.read()
        writer.close()
    return json.loads(reply.to_pybytes())


def _abandon(client: flight.FlightClient, writer) -> None:
    """The server is dead: closing the put can only report that."""
    with contextlib.suppress(flight.FlightError, OSError):
        writer.close()
    client.close()


def test_serve_sigkilled_mid_put_is_all_or_nothing(backend, db_url, nats_server, tmp_path):
    store = ["--db", db_url] if backend == "postgresql" else ["--data-dir", str(tmp_path / "d")]
    flags = ["--port", "0", "--nats", nats_server.url, "--raw-retention-days", "0"]
    serve = Flightdeck(["serve", *flags, *store], tmp_path)
    rng = random.Random()
    base = pageviews(10_000, seed=40, prefix="base")
    big = pageviews(ROWS, seed=41, prefix="big")
    in_big = "WHERE event_id LIKE 'big-%'"
    try:
        serve.start()
        assert _send(serve.location, base) == {"accepted": 10_000, "duplicates": 0}

        # Killed while the batches stream in. The writer stays open until the kill:
        # closing it would end the put normally (pyarrow has no way to cancel one).
        client = flight.connect(serve.location)
        writer, _meta = client.do_put(PUT, big.schema, CALL)
        for batch in big.to_batches(max_chunksize=BATCH)[: rng.randrange(5, ROWS // BATCH - 5)]:
            writer.write_batch(batch)
        serve.kill()
        _abandon(client, writer)
        serve.start()
        query = flight_query(serve.location)
        assert count(query, in_big) == 0  # the put never finished: nothing of it
        assert count(query) == 10_000

        # Killed after the last batch, while the server stages and commits (or just after).
        client = flight.connect(serve.location)
        writer, _meta = client.do_put(PUT, big.schema, CALL)
        writer.write_table(big, max_chunksize=BATCH)
        writer.done_writing()
        time.sleep(rng.uniform(0, 1.0))  # a random moment in the commit; any outcome is checked
        serve.kill()
        _abandon(client, writer)
        serve.start()
        query = flight_query(serve.location)
        assert count(query, in_big) in (0, ROWS)
        assert_exact(query)  # whatever is there is exact

        reply = _send(serve.location, big)
        assert reply["accepted"] + reply["duplicates"] == ROWS
        assert count(query, in_big) == ROWS
        assert_exact(query, pa.concat_tables([base, big]))
    finally:
        serve.stop()
