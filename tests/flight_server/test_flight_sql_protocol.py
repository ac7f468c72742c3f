"""Flight SQL at the wire: exact metadata schemas, SqlInfo, UNIMPLEMENTED, handles.

These speak raw pyarrow.flight with our own messages, to pin what drivers rely
on beyond what one driver happens to exercise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flightdeck.flight_server.flight_sql import messages as pb
from flightdeck.flight_server.flight_sql import metadata, sql_info
from flightdeck.flight_server.flight_sql.commands import pack
from flightdeck.flight_server.server import FlightdeckServer
from flightdeck.flight_server.settings import Settings
from google.protobuf import any_pb2

FLIGHT_SQL_DIR = Path(__file__).parents[2] / "flight_server" / "flight_sql"


def _cmd(message) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(pack(message))


def _fetch(client, message) -> tuple[pa.Schema, pa.Table]:
    info = client.get_flight_info(_cmd(message))
    table = client.do_get(info.endpoints[0].ticket).read_all()
    return info.schema, table


@pytest.mark.parametrize(
    ("message", "schema"),
    [
        (pb.CommandGetCatalogs(), metadata.CATALOGS_SCHEMA),
        (pb.CommandGetDbSchemas(), metadata.DB_SCHEMAS_SCHEMA),
        (pb.CommandGetTables(), metadata.tables_schema(False)),
        (pb.CommandGetTables(include_schema=True), metadata.tables_schema(True)),
        (pb.CommandGetTableTypes(), metadata.TABLE_TYPES_SCHEMA),
        (pb.CommandGetPrimaryKeys(table="va_pageview_hourly"), metadata.PRIMARY_KEYS_SCHEMA),
        (pb.CommandGetExportedKeys(table="va_pageview_hourly"), metadata.KEYS_SCHEMA),
        (pb.CommandGetImportedKeys(table="va_pageview_hourly"), metadata.KEYS_SCHEMA),
        (
            pb.CommandGetCrossReference(pk_table="va_a", fk_table="va_b"),
            metadata.KEYS_SCHEMA,
        ),
        (pb.CommandGetXdbcTypeInfo(), metadata.XDBC_TYPE_INFO_SCHEMA),
        (pb.CommandGetSqlInfo(), sql_info.SQL_INFO_SCHEMA),
    ],
)
@pytest.mark.slow  # seconds each: left to `make test`, out of the quick loop
def test_metadata_schemas_are_exact_in_info_get_schema_and_stream(client, message, schema):
    info_schema, table = _fetch(client, message)
    assert info_schema.equals(schema)
    assert table.schema.equals(schema)
    assert client.get_schema(_cmd(message)).schema.equals(schema)


def test_spec_nullability_of_key_fields():
    # Spot checks against the specification's text, so a typo in both code and
    # test cannot pass: table_name/table_type are `not null`, catalog_name is not.
    tables = metadata.tables_schema(True)
    assert [f.nullable for f in tables] == [True, True, False, False, False]
    assert tables.field("table_schema").type == pa.binary()
    xdbc = metadata.XDBC_TYPE_INFO_SCHEMA
    assert [f.name for f in xdbc if not f.nullable] == [
        "type_name", "data_type", "nullable", "case_sensitive", "searchable",
        "fixed_prec_scale", "sql_data_type",
    ]  # fmt: skip
    union = sql_info.SQL_INFO_SCHEMA.field("value").type
    assert union.mode == "dense" and union.type_codes == [0, 1, 2, 3, 4, 5]
    assert [union.field(i).name for i in range(6)] == [
        "string_value", "bool_value", "bigint_value", "int32_bitmask", "string_list",
        "int32_to_int32_list_map",
    ]  # fmt: skip


def test_sql_info_answers_every_id_of_the_spec(client, store):
    _, table = _fetch(client, pb.CommandGetSqlInfo())
    names, values = table.column("info_name").to_pylist(), table.column("value").to_pylist()
    answers = dict(zip(names, values, strict=True))
    spec_ids = {*range(12), 100, 101, *range(500, 577)}
    assert spec_ids <= set(answers)
    assert answers[0] == "flightdeck"
    assert answers[3] is True  # read-only SQL
    assert answers[8] == 0  # no transactions: drivers must not send BeginTransaction
    assert answers[10] is True  # bulk ingest
    assert answers[504] == '"'
    assert "QUALIFY" in answers[508]
    assert answers[526] & 1  # ANSI-92 entry level, which Tableau asks for


def test_sql_info_returns_only_what_was_asked_in_id_order(client):
    _, table = _fetch(client, pb.CommandGetSqlInfo(info=[504, 0, 563]))
    assert table.column("info_name").to_pylist() == [0, 504, 563]
    assert table.column("value").to_pylist() == ["flightdeck", '"', False]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, ["va_event", "va_pageview_aggregate", "va_pageview_event", "va_pageview_hourly"]),
        ("va_pageview_hou_ly", ["va_pageview_hourly"]),
        ("%event", ["va_event", "va_pageview_event"]),
        ("va.pageview%", []),  # LIKE, not a regular expression
        ("VA_%", []),
    ],
)
def test_get_tables_filters_with_like_patterns(client, pattern, expected):
    message = pb.CommandGetTables()
    if pattern is not None:
        message.table_name_filter_pattern = pattern
    _, table = _fetch(client, message)
    assert table.column("table_name").to_pylist() == expected


def test_get_tables_by_type_and_schema(client, store):
    _, views = _fetch(client, pb.CommandGetTables(table_types=["VIEW"]))
    _, tables = _fetch(client, pb.CommandGetTables(table_types=["TABLE"]))
    _, other_schema = _fetch(client, pb.CommandGetTables(db_schema_filter_pattern="nope%"))
    assert views.num_rows == 4 and tables.num_rows == 0 and other_schema.num_rows == 0
    assert set(views.column("db_schema_name").to_pylist()) == {store.schema_name}
    _, schemas = _fetch(client, pb.CommandGetDbSchemas())
    assert schemas.column("db_schema_name").to_pylist() == [store.schema_name]


def test_get_tables_include_schema_holds_ipc_schemas(client):
    _, table = _fetch(
        client,
        pb.CommandGetTables(table_name_filter_pattern="va_pageview_hourly", include_schema=True),
    )
    schema = pa.ipc.read_schema(pa.py_buffer(table.column("table_schema")[0].as_py()))
    assert schema.names[:4] == ["page_url", "hour", "view_count", "unique_visitors"]
    assert schema.field("hour").metadata[b"ARROW:FLIGHT:SQL:TABLE_NAME"] == b"va_pageview_hourly"


def test_xdbc_type_info_filters_by_data_type(client):
    _, table = _fetch(client, pb.CommandGetXdbcTypeInfo(data_type=12))
    assert table.column("type_name").to_pylist() == ["VARCHAR"]
    _, everything = _fetch(client, pb.CommandGetXdbcTypeInfo())
    codes = everything.column("data_type").to_pylist()
    assert codes == sorted(codes)


def _any(type_name: str, body: bytes = b"") -> bytes:
    wrapped = any_pb2.Any(
        type_url=f"type.googleapis.com/arrow.flight.protocol.sql.{type_name}", value=body
    )
    return wrapped.SerializeToString()


def test_unknown_flight_sql_commands_answer_unimplemented_naming_them(client):
    descriptor = flight.FlightDescriptor.for_command(_any("CommandStatementSubstraitPlan"))
    with pytest.raises(pa.ArrowNotImplementedError, match="CommandStatementSubstraitPlan"):
        client.get_flight_info(descriptor)
    with pytest.raises(pa.ArrowNotImplementedError, match="BeginTransaction"):
        list(
            client.do_action(
                flight.Action("BeginTransaction", _any("ActionBeginTransactionRequest"))
            )
        )
    with pytest.raises(pa.ArrowNotImplementedError, match=r"CommandStatementUpdate.*read-only"):
        writer, _ = client.do_put(
            _cmd(pb.CommandStatementUpdate(query="DELETE FROM x")), pa.schema([])
        )
        writer.close()
    with pytest.raises(pa.ArrowNotImplementedError, match="transactions"):
        client.get_flight_info(
            _cmd(pb.CommandStatementQuery(query="SELECT 1", transaction_id=b"t"))
        )
    assert client.get_flight_info(_cmd(pb.CommandGetTableTypes())).total_records == -1  # serving


def test_list_actions_names_every_action(client):
    assert sorted(a.type for a in client.list_actions()) == [
        "CancelFlightInfo",
        "CancelQuery",
        "ClosePreparedStatement",
        "CloseSession",
        "CreatePreparedStatement",
        "GetSessionOptions",
        "SetSessionOptions",
        "health",
        "load-status",
        "reaggregate",
        "retention",
    ]


def test_plain_sql_stays_plain_even_starting_with_a_newline(client):
    descriptor = flight.FlightDescriptor.for_command(b"\nSELECT 42 AS answer")
    info = client.get_flight_info(descriptor)
    assert client.do_get(info.endpoints[0].ticket).read_all().to_pylist() == [{"answer": 42}]


def test_plain_sql_with_an_unbound_placeholder_says_so(client):
    descriptor = flight.FlightDescriptor.for_command(
        b"SELECT * FROM va_pageview_aggregate WHERE page_url = ?"
    )
    with pytest.raises(pa.ArrowInvalid, match=r"\[parameters\].*1 parameter\(s\) but 0"):
        client.get_flight_info(descriptor)


def test_prepared_handles_are_self_contained_and_checked(client):
    result = next(
        iter(
            client.do_action(
                flight.Action(
                    "CreatePreparedStatement",
                    pack(pb.ActionCreatePreparedStatementRequest(query="SELECT ? + 1 AS n")),
                )
            )
        )
    )
    created = any_pb2.Any.FromString(result.body.to_pybytes())
    prepared = pb.ActionCreatePreparedStatementResult.FromString(created.value)
    assert pa.ipc.read_schema(pa.py_buffer(prepared.parameter_schema)).names == ["$1"]
    handle = prepared.prepared_statement_handle
    writer, meta = client.do_put(
        _cmd(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle)),
        pa.schema([("p", pa.int64())]),
    )
    writer.write_batch(pa.record_batch([pa.array([41])], names=["p"]))
    writer.done_writing()
    updated = pb.DoPutPreparedStatementResult.FromString(meta.read().to_pybytes())
    writer.close()
    info = client.get_flight_info(
        _cmd(
            pb.CommandPreparedStatementQuery(
                prepared_statement_handle=updated.prepared_statement_handle
            )
        )
    )
    assert client.do_get(info.endpoints[0].ticket).read_all().column("n").to_pylist() == [42]

    forged = json.loads(handle)
    forged["sql"] = "SELECT * FROM tb_pageview_event"
    with pytest.raises(pa.ArrowInvalid, match="va-views-only"):
        client.get_flight_info(
            _cmd(
                pb.CommandPreparedStatementQuery(
                    prepared_statement_handle=json.dumps(forged).encode()
                )
            )
        )


def test_type_urls_follow_the_specification():
    wrapped = any_pb2.Any.FromString(pack(pb.CommandStatementQuery(query="SELECT 1")))
    assert wrapped.type_url == (
        "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    )
    field = pb.CommandStatementIngest.DESCRIPTOR.fields_by_name["options"]
    assert field.number == 1000


def test_committed_descriptor_set_is_compiled_from_the_proto(tmp_path):
    out = tmp_path / "FlightSql.binpb"
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{FLIGHT_SQL_DIR}",
            f"--descriptor_set_out={out}", "FlightSql.proto",
        ],
        check=True,
    )  # fmt: skip
    assert out.read_bytes() == (FLIGHT_SQL_DIR / "FlightSql.binpb").read_bytes(), (
        "FlightSql.proto changed: run `make proto` and commit FlightSql.binpb"
    )


def test_statement_query_info_schema_equals_stream_schema(client, store):
    # Drivers that do not prepare send CommandStatementQuery (ADBC falls back to it).
    message = pb.CommandStatementQuery(
        query="SELECT page_url, hour, view_count FROM va_pageview_hourly ORDER BY hour"
    )
    info_schema, table = _fetch(client, message)
    assert info_schema.equals(table.schema)
    assert info_schema.field("hour").type == pa.timestamp("us", "UTC")
    assert client.get_schema(_cmd(message)).schema.equals(info_schema)


def test_unknown_action_names_every_action_the_server_has(client):
    with pytest.raises(pa.ArrowNotImplementedError, match="bogus") as info:
        list(client.do_action(flight.Action("bogus", b"")))
    for action in client.list_actions():
        assert action.type in str(info.value), (action.type, str(info.value))


def test_sql_info_states_the_enforced_timeout_and_ansi_entry_level_only(store, tmp_path):
    # The README promises ANSI-92 entry level; the store cancels queries after
    # --query-timeout, so SqlInfo must not say "no timeout".
    server = FlightdeckServer(Settings(port=0, data_dir=tmp_path, query_timeout=42.5), store)
    try:
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            _, table = _fetch(client, pb.CommandGetSqlInfo(info=[100, 526]))
    finally:
        server.shutdown()
    answers = dict(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))
    assert answers == {100: 42_500, 526: 0b001}


def test_committed_session_descriptor_set_is_compiled_from_the_proto(tmp_path):
    session_dir = FLIGHT_SQL_DIR.parent / "session"
    out = tmp_path / "FlightSession.binpb"
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{session_dir}",
            f"--descriptor_set_out={out}", "FlightSession.proto",
        ],
        check=True,
    )  # fmt: skip
    assert out.read_bytes() == (session_dir / "FlightSession.binpb").read_bytes(), (
        "FlightSession.proto changed: run `make proto` and commit FlightSession.binpb"
    )
