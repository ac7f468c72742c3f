"""The NATS worker's own ceiling: `python -m benchmarks.noop_worker NATS_URL`.

flightdeck's IngestWorker as `serve` runs it (pull, decode in bulk, overlapped
commit and ack), with a commit that stores nothing: what one worker can move
when the store costs nothing. Its own nats-server: the worker's durable consumer
name is fixed, so a second worker on the server's NATS would share its messages.

Prints `ready` once the EVENTS stream exists (published events are kept from
then on), then `committed N`, the running total of events, after each batch.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import nats
from flightdeck.flight_server import Settings
from flightdeck.ingest.messages import Decoded
from flightdeck.ingest.nats_worker import IngestWorker, _Outcome
from flightdeck.ingest.pipeline import IngestResult
from flightdeck.ingest.streams import EVENTS, ensure_stream

__all__ = ["NoStoreWorker", "NoStoreWorkerProcess"]


class NoStoreWorker(IngestWorker):
    """The commit is the one step replaced: everything the worker does around it stays."""

    async def _commit(self, decoded: Decoded) -> _Outcome:
        rows = sum(batch.num_rows for batch in decoded.batches)
        return _Outcome(decoded, IngestResult(rows, 0, None))


async def _run(url: str) -> None:
    nc = await nats.connect(url)
    await ensure_stream(nc.jetstream(), EVENTS)
    total = 0

    def committed(result: IngestResult) -> None:
        nonlocal total
        total += result.accepted
        print(f"committed {total}", flush=True)

    worker = NoStoreWorker(None, nc, Settings().worker_options(), on_commit=committed)  # type: ignore[arg-type]
    print("ready", flush=True)
    await worker.run()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("nats_url")
    asyncio.run(_run(parser.parse_args().nats_url))


class NoStoreWorkerProcess:
    """The parent's handle: start the child, then wait for running totals it pushes."""

    def __init__(self, nats_url: str) -> None:
        self._cmd = [sys.executable, "-m", "benchmarks.noop_worker", nats_url]
        self._total = 0
        self._changed = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> NoStoreWorkerProcess:
        self._proc = subprocess.Popen(
            self._cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the no-op NATS worker did not start")
        threading.Thread(target=self._follow, daemon=True).start()
        return self

    def _follow(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("committed "):
                with self._changed:
                    self._total = int(line.split()[1])
                    self._changed.notify_all()

    def wait_for(self, total: int, timeout: float) -> float:
        """perf_counter() once the worker's running total reaches `total`."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._total >= total, timeout):
                raise RuntimeError(
                    f"no-op worker: {self._total} of {total} events after {timeout}s"
                )
            return time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(30)


if __name__ == "__main__":
    main()
