"""The client's half of a load: its batches over a call that Ctrl-C can cancel.

pyarrow cannot cancel a DoPut, so a load goes over DoExchange on the same path
`["events", "pageview"]`. The server ingests what arrives and commits only if
the call is not cancelled by then; it never waits on us once our stream ends.
The put runs in a worker thread, so that a Ctrl-C reaches us at once even while
pyarrow blocks in C++ (a write the server does not take yet, the wait for the
answer). We then cancel the call and ask the server, by the load's id, whether
the put was committed: the answer comes once no put is committing, so it is
exact.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from .errors import LoadInterrupted
from .interruptible import interruptible

__all__ = ["Put", "nothing_sent_yet"]

# After a cancel, how long the worker gets to see its call end.
_SETTLE_S = 5.0


class Put:
    """One load's call; `run` sends it and returns the server's summary."""

    def __init__(
        self,
        client: flight.FlightClient,
        descriptor: flight.FlightDescriptor,
        options: flight.FlightCallOptions,
    ) -> None:
        self.load_id = uuid.uuid4().hex
        self.rows = 0
        # Until our stream ends the server cannot commit: it commits a put only once
        # its stream has ended and the call is not cancelled.
        self._ending = False
        self._done = threading.Event()  # the worker is out of pyarrow's calls
        self._writer, self._reader = client.do_exchange(descriptor, options)

    def run(
        self,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        bar: Any,
        status: Callable[[str], dict],
    ) -> pa.Buffer | None:
        """Send `batches`; the server's answer. On Ctrl-C, cancel the call and raise
        LoadInterrupted saying what became of the put (`status` asks the server)."""
        try:
            return interruptible(lambda: self._send(schema, batches, bar))
        except KeyboardInterrupt:
            self._reader.cancel()
        if not self._ending:
            raise LoadInterrupted(
                "the put was aborted, nothing was committed", committed=False, load_id=self.load_id
            )
        bar.set_description("cancelling")  # the answer waits until the server rolled back
        self._settle()
        raise _interrupted(self.load_id, status)

    def _send(self, schema: pa.Schema, batches: Iterable[pa.RecordBatch], bar: Any):
        try:
            self._writer.begin(schema)
            self._writer.write_metadata(_json({"load_id": self.load_id}))
            for batch in batches:
                self._writer.write_batch(batch)
                self.rows += batch.num_rows
                bar.update(batch.num_rows)
            bar.set_description("committing")
            self._ending = True
            self._writer.done_writing()
            answer = self._reader.read_chunk().app_metadata
        except pa.ArrowException:
            # A write fails with a vague error when the server refuses the put; the
            # reader has the server's own words.
            raise self._refusal() from None
        except BaseException:
            self._reader.cancel()  # a source that fails: nothing of the put may commit
            raise
        finally:
            self._close()
            self._done.set()
        return answer

    def _refusal(self) -> BaseException:
        try:
            self._reader.read_chunk()
        except pa.ArrowException as exc:
            return exc
        except StopIteration:
            pass
        return flight.FlightInternalError("the server ended the load without an answer")

    def _close(self) -> None:
        with contextlib.suppress(pa.ArrowException, OSError):
            self._writer.close()

    def _settle(self) -> None:
        """Wait for the cancelled call to end in the worker (a second Ctrl-C stops waiting)."""
        with contextlib.suppress(KeyboardInterrupt):
            self._done.wait(_SETTLE_S)


@contextlib.contextmanager
def nothing_sent_yet() -> Iterator[None]:
    """A Ctrl-C here, before the put's call exists, says that nothing was committed."""
    try:
        yield
    except KeyboardInterrupt:
        raise LoadInterrupted(
            "the load was stopped before it was sent, nothing was committed", committed=False
        ) from None


def _interrupted(load_id: str, status: Callable[[str], dict]) -> LoadInterrupted:
    try:
        answer = interruptible(lambda: status(load_id))
    except (KeyboardInterrupt, Exception) as exc:
        return LoadInterrupted(
            f"the server did not say whether the put was committed ({exc or 'interrupted'}); "
            f"ask it with Client.load_status({load_id!r}) before loading again",
            committed=None,
            load_id=load_id,
        )
    if not answer.get("committed"):
        return LoadInterrupted(
            "the put was aborted, nothing was committed", committed=False, load_id=load_id
        )
    summary = {"accepted": answer["accepted"], "duplicates": answer["duplicates"]}
    return LoadInterrupted(
        "the interrupt came after the commit: the put was committed "
        f"({summary['accepted']} accepted, {summary['duplicates']} duplicates)",
        committed=True,
        result=summary,
        load_id=load_id,
    )


def _json(body: dict) -> pa.Buffer:
    return pa.py_buffer(json.dumps(body).encode())
