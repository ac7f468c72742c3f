"""Decoding NATS payloads: JSON read in bulk gives exactly what one-by-one decoding gives.

No services: `decode` is pure. The NATS tests (test_nats.py) cover the same
paths end to end with a real nats-server and both stores.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pytest
from flightdeck.ingest.messages import ARROW_CONTENT_TYPE, Limits, Payload, decode

LIMITS = Limits(message_bytes=16 * 2**20, batch_bytes=128 * 2**20)  # the defaults


def _event(i: int, **extra: object) -> dict:
    return {
        "session_id": f"session-{i % 3}",
        "page_url": f"/p{i % 4}",
        "timestamp": f"2024-01-15T10:{i % 60:02d}:00Z",
        **extra,
    }


def _payloads(datas: list[bytes]) -> list[Payload]:
    return [Payload(d, None, f"nats:EVENTS:{i + 1}") for i, d in enumerate(datas)]


def _rows(decoded) -> list[tuple[int, dict]]:
    rows = [row for batch in decoded.batches for row in batch.to_pylist()]
    assert len(rows) == len(decoded.owners)
    return list(zip(decoded.owners, rows, strict=True))


def _each_alone(payloads: list[Payload]) -> tuple[list, list]:
    """What decoding every message on its own gives, renumbered as in the batch."""
    rows, rejected = [], []
    for i, payload in enumerate(payloads):
        alone = decode([payload], LIMITS)
        rows += [(i, row) for _, row in _rows(alone)]
        rejected += [(i, r.reason) for r in alone.rejected]
    return rows, rejected


# Messages that test the edges of the bulk reader: each must fare exactly as it
# does alone, whatever its neighbours.
_TRICKY = [
    json.dumps(_event(1, user_pk=7)).encode(),  # ids arrive as numbers
    json.dumps(_event(2, user_id="u", user_pk=7)).encode(),  # our name wins over the alias
    json.dumps({**_event(3), "recorded_at": None}).encode(),  # null: the alias counts
    json.dumps(_event(4, event_id="")).encode(),  # empty: the stream-derived id
    json.dumps(_event(5, event_id=12)).encode(),
    json.dumps(_event(6, properties={"ab": "b", "n": [1, 2.5], "x": None})).encode(),
    json.dumps(_event(7, properties={})).encode(),
    json.dumps(_event(8, properties="not an object")).encode(),
    json.dumps(_event(9, duration_s=12)).encode(),
    json.dumps(_event(10, duration_s=True)).encode(),
    json.dumps(_event(11, session_id=1.5)).encode(),
    json.dumps(_event(12, session_id=True)).encode(),
    json.dumps(_event(13, user_pk=2**70)).encode(),  # too big for int64: still its digits
    json.dumps(_event(14, date="2024-01-15", extra={"nested": [1, "a"]})).encode(),
    json.dumps(_event(15), indent=2).encode(),  # pretty-printed, newlines inside
    b" " + json.dumps(_event(16)).encode(),
    b"\xef\xbb\xbf" + json.dumps(_event(17)).encode(),  # a UTF-8 byte order mark
    json.dumps(_event(18)).encode()[:-1] + b', "junk": "\xff"}',  # invalid UTF-8
    json.dumps(_event(19)).encode()[:-1] + b', "junk": "\xed\xa0\x80"}',  # encoded surrogate
    json.dumps(_event(20)).encode() + b" " + json.dumps(_event(21)).encode(),  # two objects
    json.dumps(_event(22)).encode()[:-1] + b', "page_url": "/dup"}',  # a key twice
    b'{"session_id": "s", "page_url": "\\ud800", "timestamp": "2024-01-15T10:00:00Z"}',
    json.dumps(_event(23, duration_s=float("nan"))).encode(),
    b'{"session_id": "s", "page_url": "/a", "timestamp": "2024-01-15", "duration_s": 1e400}',
    json.dumps({"page_url": "/a", "timestamp": "2024-01-15T10:00:00Z"}).encode(),
    json.dumps(_event(24, timestamp="next tuesday")).encode(),
    json.dumps(_event(25, timestamp=5)).encode(),
    b"[1, 2, 3]",
    b"not json",
    b"",
    b"{}",
]


@pytest.mark.parametrize("spacing", [1, 7, 40])
@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_a_batch_decodes_exactly_as_its_messages_do_alone(spacing: int):
    # Tricky messages among good ones, densely or sparsely, so that bulk reads meet
    # them mid-batch as well as alone in a small chunk.
    datas = []
    for i, tricky in enumerate(_TRICKY):
        datas += [json.dumps(_event(i * spacing + j)).encode() for j in range(spacing)]
        datas.append(tricky)
    payloads = _payloads(datas)
    decoded = decode(payloads, LIMITS)
    rows, rejected = _each_alone(payloads)
    # repr: a NaN duration is equal to itself only in text.
    assert repr(sorted(_rows(decoded), key=lambda r: r[0])) == repr(rows)
    assert sorted((r.index, r.reason) for r in decoded.rejected) == rejected
    assert _rows(decoded)  # (and something got through)


def test_a_poison_message_mid_batch_is_rejected_alone_and_the_rest_decoded():
    datas = [json.dumps(_event(i, user_pk=i)).encode() for i in range(1000)]
    datas[500] = b'{"session_id": "s", "page_url": "/a", "timestamp": "2024-01-15" ,,}'
    datas[731] = json.dumps(_event(731, session_id={"nested": 1})).encode()
    decoded = decode(_payloads(datas), LIMITS)
    assert [
        (r.index, r.reason.split(":")[0]) for r in sorted(decoded.rejected, key=lambda r: r.index)
    ] == [
        (500, "not JSON"),
        (731, "[type] session_id"),
    ]
    rows = _rows(decoded)
    assert [owner for owner, _ in rows] == [i for i in range(1000) if i not in (500, 731)]
    assert rows[0][1]["event_id"] == "nats:EVENTS:1"
    assert rows[0][1]["user_id"] == "0"


def test_event_ids_default_to_the_stream_sequence_and_the_sender_s_id_wins():
    datas = [
        json.dumps(_event(0)).encode(),
        json.dumps(_event(1, event_id="mine")).encode(),
        json.dumps(_event(2, event_id="")).encode(),
        json.dumps(_event(3, event_id=None)).encode(),
    ]
    ids = [row["event_id"] for _, row in _rows(decode(_payloads(datas), LIMITS))]
    assert ids == ["nats:EVENTS:1", "mine", "nats:EVENTS:3", "nats:EVENTS:4"]


def test_a_null_field_lets_its_alias_count():
    datas = [
        json.dumps({**_event(0), "recorded_at": None, "user_pk": 5, "user_id": None}).encode(),
        json.dumps({**_event(1), "recorded_at": "2024-02-01T00:00:00Z", "user_pk": 5}).encode(),
    ]
    rows = [row for _, row in _rows(decode(_payloads(datas), LIMITS))]
    assert [(str(r["recorded_at"].date()), r["user_id"]) for r in rows] == [
        ("2024-01-15", "5"),
        ("2024-02-01", "5"),
    ]


def test_properties_are_kept_as_the_json_text_sent():
    props = {"b": 1, "a": [1, 2.5, None], "nested": {"z": "é"}}
    datas = [json.dumps(_event(i, properties=props if i % 2 else None)).encode() for i in range(6)]
    rows = [row for _, row in _rows(decode(_payloads(datas), LIMITS))]
    assert [r["properties"] for r in rows] == [None, json.dumps(props)] * 3


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_arrow_payloads_mix_with_json_ones():
    table = pa.table(
        {"session_id": ["a", "b"], "page_url": ["/x", "/y"], "recorded_at": ["2024-01-15"] * 2}
    )
    payloads = [
        Payload(json.dumps(_event(0)).encode(), None, "nats:EVENTS:1"),
        Payload(_ipc(table), {"Content-Type": ARROW_CONTENT_TYPE}, "nats:EVENTS:2"),
        Payload(b"not json", None, "nats:EVENTS:3"),
        Payload(json.dumps(_event(3)).encode(), None, "nats:EVENTS:4"),
    ]
    decoded = decode(payloads, LIMITS)
    assert sorted((owner, row["event_id"]) for owner, row in _rows(decoded)) == [
        (0, "nats:EVENTS:1"),
        (1, "nats:EVENTS:2:0"),
        (1, "nats:EVENTS:2:1"),
        (3, "nats:EVENTS:4"),
    ]
    assert [r.index for r in decoded.rejected] == [2]


_DECODE_ONE = """
import sys
from flightdeck.ingest.messages import Limits, Payload, decode
limits = Limits(message_bytes=16 * 2**20, batch_bytes=128 * 2**20)
good = b'{"session_id": "s", "page_url": "/a", "timestamp": "2024-01-15T10:00:00Z"}'
deep = good[:-1] + b', "properties": {"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
payloads = [Payload(good, None, "1"), Payload(deep, None, "2"), Payload(good, None, "3")]
decoded = decode(payloads, limits)
print(decoded.owners, [(r.index, r.reason) for r in decoded.rejected])
"""


def test_deeply_nested_json_is_rejected_not_a_crash():
    # Arrow's JSON reader overflowed the stack and the process died (the server,
    # under NATS, again on every redelivery); in a subprocess so the suite survives.
    done = subprocess.run(
        [sys.executable, "-c", _DECODE_ONE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert (
        done.stdout.strip() == "[0, 2] [(1, 'not JSON that can be read back: nested too deeply')]"
    )


def test_properties_read_in_bulk_meet_the_json_check_that_put_properties_meet():
    # Bulk-read properties skip the second JSON parse only where json.dumps text
    # cannot fail it: a value that was not finite, or a lone surrogate, still fails.
    cases = [
        (b'{"a": NaN}', "[json] properties"),
        (b'{"a": [1, -Infinity]}', "[json] properties"),
        (b'{"a": 1e400}', "[json] properties"),  # read as inf: dumped as Infinity
        (b'{"a": "\\ud800"}', "[text] properties"),
        (b'{"\\udc00": 1}', "[text] properties"),
        (b'{"a": "NaN and Infinity"}', '{"a": "NaN and Infinity"}'),
        (b'{"a": "\\ud83d\\ude00 \\\\ud800"}', '{"a": "\\ud83d\\ude00 \\\\ud800"}'),
        (b'{"a": [1.5, {"b": null}]}', '{"a": [1.5, {"b": null}]}'),
        # Integers past 64 bits stay integers (orjson alone would read them as floats).
        (b'{"a": 123456789012345678901234567890}', '{"a": 123456789012345678901234567890}'),
        (b'{"a": -9223372036854775809, "b": 1e2}', '{"a": -9223372036854775809, "b": 100.0}'),
        (b'{"a": "\\u00e9", "a": 2}', '{"a": 2}'),  # a key twice: the last wins
    ]
    datas = [json.dumps(_event(i)).encode() for i in range(10 * len(cases))]
    for n, (properties, _) in enumerate(cases):
        datas[10 * n + 5] = (
            json.dumps(_event(n)).encode()[:-1] + b', "properties": ' + properties + b"}"
        )
    decoded = decode(_payloads(datas), LIMITS)
    reasons = {r.index: r.reason for r in decoded.rejected}
    stored = {owner: row["properties"] for owner, row in _rows(decoded)}
    for n, (_, fate) in enumerate(cases):
        index = 10 * n + 5
        if fate.startswith("["):
            assert reasons[index].startswith(fate), (index, reasons.get(index))
        else:
            assert index not in reasons and stored[index] == fate
    assert len(stored) == len(datas) - len(reasons)
