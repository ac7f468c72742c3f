"""The client's half of a load's DoPut: batches, then a two-phase commit a Ctrl-C can stop.

pyarrow cannot cancel a DoPut, and a server commits a plain put when its stream
ends: a Ctrl-C after the last batch used to let the whole put commit. So a load
announces the explicit-commit protocol (see flight_server/descriptors.PutStream):
after its batches it asks the server to prepare, and says "commit" only once the
server is ready and no interrupt came. Until then an interrupt aborts the put.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from .errors import LoadInterrupted

__all__ = ["send"]

# After "commit" was sent, how long a Ctrl-C waits for the server's answer.
_ANSWER_GRACE_S = 10.0
_POLL_S = 0.1


def send(
    writer: flight.FlightStreamWriter,
    metadata: flight.FlightMetadataReader,
    batches: Iterable[pa.RecordBatch],
    bar: Any,
) -> tuple[int, pa.Buffer | None]:
    """Send `batches` as one put and commit it: (rows sent, the server's summary).

    A KeyboardInterrupt before the commit aborts the put and raises
    LoadInterrupted(committed=False); one after it says what became of the put.
    Other errors abort the put and propagate.
    """
    rows, reply = 0, None
    try:
        _control(writer, {"protocol": "explicit-commit"})
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
            bar.update(batch.num_rows)
        bar.set_description("committing")
        _control(writer, {"prepare": True})
        reply = _Reply(metadata)
        answer = reply.wait()
    except BaseException as exc:
        _abort(writer, exc, reply)
        if isinstance(exc, KeyboardInterrupt):
            raise LoadInterrupted(
                "the put was aborted, nothing was committed", committed=False
            ) from exc
        raise
    if answer is None or _summary(answer) is not None:
        # Nothing new to commit (the server answered at once), or a refusal that the
        # writer's close() reports.
        return rows, answer
    _control(writer, {"commit": True})
    writer.done_writing()
    return rows, _committed(_Reply(metadata), bar)


def _committed(reply: _Reply, bar: Any) -> pa.Buffer | None:
    """The answer to "commit"; on Ctrl-C, wait a little for it and say what happened."""
    try:
        return reply.wait()
    except KeyboardInterrupt:
        bar.set_description("committing (Ctrl-C again to stop waiting)")
    try:
        answer = reply.wait(_ANSWER_GRACE_S)
    except (KeyboardInterrupt, TimeoutError):
        raise LoadInterrupted(
            "the put was being committed and the server has not answered: it may or may "
            "not have been committed; query the events before loading them again",
            committed=None,
        ) from None
    except pa.ArrowException as exc:
        raise LoadInterrupted(
            f"the put was aborted, nothing was committed ({exc})", committed=False
        ) from exc
    summary = _summary(answer)
    raise LoadInterrupted(
        "the interrupt came too late: the put was committed "
        f"({summary and summary['accepted']} accepted, "
        f"{summary and summary['duplicates']} duplicates)",
        committed=True,
        result=summary,
    )


class _Reply:
    """The server's next answer, read in a thread: pyarrow's read blocks in C++, where a
    Ctrl-C would wait for the answer instead of stopping us."""

    def __init__(self, metadata: flight.FlightMetadataReader) -> None:
        self._answer: pa.Buffer | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        threading.Thread(target=self._read, args=(metadata,), daemon=True).start()

    def _read(self, metadata: flight.FlightMetadataReader) -> None:
        try:
            self._answer = metadata.read()
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> pa.Buffer | None:
        """The answer; KeyboardInterrupt on Ctrl-C, TimeoutError after `timeout` seconds."""
        waited = 0.0
        while not self._done.wait(_POLL_S):  # short waits: a signal is handled between them
            waited += _POLL_S
            if timeout is not None and waited >= timeout:
                raise TimeoutError
        if self._error is not None:
            raise self._error
        return self._answer

    def settle(self) -> None:
        """Wait (a second Ctrl-C stops waiting) until the read has ended, however."""
        with contextlib.suppress(BaseException):
            self.wait()


def _summary(answer: pa.Buffer | None) -> dict | None:
    try:
        body = json.loads(answer.to_pybytes()) if answer is not None else None
    except ValueError:
        return None
    return body if isinstance(body, dict) and "accepted" in body else None


def _control(writer: flight.FlightStreamWriter, body: dict) -> None:
    writer.write_metadata(pa.py_buffer(json.dumps(body).encode()))


def _abort(writer: flight.FlightStreamWriter, exc: BaseException, reply: _Reply | None) -> None:
    """End a put so that the server commits nothing of it: `{"abort": reason}` rolls it
    back, before the commit or after "prepare" alike."""
    reason = f"{type(exc).__name__}: {exc}"[:200]
    with contextlib.suppress(Exception):
        _control(writer, {"abort": reason})
    with contextlib.suppress(Exception):
        writer.done_writing()
    if reply is not None:  # the server answers the abort once it has rolled back
        reply.settle()
    with contextlib.suppress(Exception):
        writer.close()
