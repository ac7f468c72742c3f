"""How big an Arrow IPC stream becomes once decoded, read from its metadata alone.

A compressed IPC body is tiny on the wire (1 GB of zeros is 33 KB with zstd),
and Arrow allocates each buffer at the length the sender declares before it
decompresses. So the size must be known before decoding: each record batch and
dictionary batch message carries a flatbuffer listing its body buffers
(offset, length); in a compressed body every buffer starts with its
uncompressed length as a little-endian int64 (-1: stored uncompressed). This
module reads just that much of the Arrow format (Message.fbs, Schema.fbs)
itself: pyarrow offers no limit on decompressed size (IpcReadOptions has none).
"""

from __future__ import annotations

import struct

import pyarrow as pa

__all__ = ["ROW_BYTES", "OverLimit", "batch_size", "decoded_size", "read_bounded"]

# Message.header's union tags (Message.fbs)
_DICTIONARY_BATCH = 2
_RECORD_BATCH = 3
_NOT_COMPRESSED = -1
# Each row counts at least this much: a column of the null type (or run-end encoded)
# has almost no body however many rows it claims, yet normalising the rows to events
# builds 8 bytes for each row's timestamp alone.
ROW_BYTES = 8


class OverLimit(Exception):
    """The payload decodes to more than `limit` bytes; `found` is as far as we counted."""

    def __init__(self, found: int, limit: int) -> None:
        super().__init__(f"decodes to more than {limit} bytes ({found} counted)")
        self.found = found
        self.limit = limit


def read_bounded(data: bytes | pa.Buffer, max_bytes: int) -> pa.Table:
    """The batches of an IPC stream, decoded only once its decoded size is known to be
    within `max_bytes`. Raises OverLimit, or ValueError for a payload that is not an
    IPC stream."""
    buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    decoded_size(buffer, max_bytes)
    try:
        return pa.ipc.open_stream(buffer).read_all()
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"not an Arrow IPC stream: {exc}") from None


def decoded_size(buffer: pa.Buffer, stop_over: int | None = None) -> int:
    """The bytes every batch of the stream takes once decoded (dictionaries included);
    raises OverLimit as soon as the running total passes `stop_over`, reading no further."""
    total = 0
    try:
        reader = pa.ipc.MessageReader.open_stream(buffer)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"not an Arrow IPC stream: {exc}") from None
    while True:
        try:
            message = reader.read_next_message()
        except StopIteration:
            return total
        except (OSError, pa.ArrowException) as exc:  # pyarrow's own checks of the framing
            raise ValueError(f"not an Arrow IPC stream: {exc}") from None
        total += _message_size(message)
        if stop_over is not None and total > stop_over:
            raise OverLimit(total, stop_over)


def _message_size(message: pa.ipc.Message) -> int:
    """The decoded body of one message; a schema message has none."""
    fb = _Flatbuffer(message.metadata.to_pybytes())
    root = fb.root()
    header_type = fb.scalar(root, 1, "<B", 0)
    header = fb.table(root, 2)
    if header is None or header_type not in (_RECORD_BATCH, _DICTIONARY_BATCH):
        return 0
    if header_type == _DICTIONARY_BATCH:
        header = fb.table(header, 1)  # DictionaryBatch.data: a RecordBatch
        if header is None:
            raise ValueError("a dictionary batch without its data")
    compressed = fb.table(header, 3) is not None  # RecordBatch.compression
    body = message.body
    size = sum(
        _buffer_size(body, offset, length, compressed) for offset, length in fb.buffers(header, 2)
    )
    rows = fb.scalar(header, 0, "<q", 0)  # RecordBatch.length
    if rows < 0:
        raise ValueError(f"a record batch of {rows} rows")
    return max(size, rows * ROW_BYTES)


def batch_size(batch: pa.RecordBatch) -> int:
    """What a decoded batch counts for, by the same rule: its bytes, or its rows."""
    return max(batch.nbytes, batch.num_rows * ROW_BYTES)


def _buffer_size(body: pa.Buffer | None, offset: int, length: int, compressed: bool) -> int:
    body_size = 0 if body is None else body.size
    if offset < 0 or length < 0 or offset + length > body_size:
        raise ValueError("an IPC buffer lies outside its message body")
    if not compressed or length == 0:
        return length
    if length < 8:
        raise ValueError("a compressed IPC buffer without its length prefix")
    (declared,) = struct.unpack("<q", body.slice(offset, 8).to_pybytes())
    if declared == _NOT_COMPRESSED:
        return length - 8
    if declared < 0:
        raise ValueError(f"a compressed IPC buffer declares a length of {declared}")
    return declared


class _Flatbuffer:
    """Just enough of the flatbuffers wire format to read tables, scalars and struct
    vectors, each read checked against the buffer's end (the metadata is untrusted)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def _read(self, fmt: str, at: int):
        if at < 0 or at + struct.calcsize(fmt) > len(self._data):
            raise ValueError("IPC message metadata is truncated or malformed")
        return struct.unpack_from(fmt, self._data, at)[0]

    def root(self) -> int:
        return self._read("<I", 0)

    def _field(self, table: int, index: int) -> int | None:
        """Where field `index` of `table` sits, or None when absent."""
        vtable = table - self._read("<i", table)
        vtable_size = self._read("<H", vtable)
        slot = 4 + 2 * index
        if slot + 2 > vtable_size:
            return None
        offset = self._read("<H", vtable + slot)
        return table + offset if offset else None

    def scalar(self, table: int, index: int, fmt: str, default: int) -> int:
        at = self._field(table, index)
        return default if at is None else self._read(fmt, at)

    def table(self, table: int, index: int) -> int | None:
        at = self._field(table, index)
        return None if at is None else at + self._read("<I", at)

    def buffers(self, table: int, index: int) -> list[tuple[int, int]]:
        """A vector of Buffer structs {offset: int64, length: int64}."""
        at = self._field(table, index)
        if at is None:
            return []
        vector = at + self._read("<I", at)
        count = self._read("<I", vector)
        if vector + 4 + 16 * count > len(self._data):
            raise ValueError("IPC message metadata is truncated or malformed")
        return [struct.unpack_from("<qq", self._data, vector + 4 + 16 * i) for i in range(count)]
