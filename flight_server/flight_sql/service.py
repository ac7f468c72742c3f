"""Flight SQL on flightdeck's Flight server: what each command means here.

The server class hands every Flight SQL message to this one object. Queries go
through the same guard and store as plain SQL descriptors; metadata is answered
from the catalog of `va_` views; bulk ingest goes through the same pipeline as
DoPut `["events", TYPE]`: into table `tb_pageview_event` for page views, into
table `events.TYPE` (`events.user.login`, as the NATS subject) for any type.
Anything else is named and answered UNIMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.flight as flight
from flightdeck.ingest import IngestResult
from flightdeck.ingest.event_types import PAGEVIEW, type_name_problem
from flightdeck.views import Store, Unsupported, describe
from flightdeck.views import query as queries
from flightdeck.views.parameter_cast import cast_parameters
from flightdeck.views.parameters import check_bound, parameter_schema, without_unions
from google.protobuf.message import Message

from .. import descriptors
from ..limits import Slots
from ..refusals import InvalidAction, InvalidTarget
from . import messages as pb
from . import metadata, sql_info
from .commands import pack, unpack
from .prepared import Bindings, Handle

__all__ = ["FlightSqlService"]

INGEST_TABLE = "tb_pageview_event"
TYPED_PREFIX = "events."  # bulk ingest into table "events.TYPE": events of TYPE
_ACTIONS = [
    ("CreatePreparedStatement", "Prepare a read-only SQL query over the va_ views"),
    ("ClosePreparedStatement", "Release a prepared statement's bound parameters"),
]


class FlightSqlService:
    def __init__(
        self,
        store: Store,
        *,
        version: str,
        put_events: Callable[[Iterable[pa.RecordBatch], str], IngestResult],
        locations: list[str],
        max_batch_bytes: int,
        query_slots: Slots,
        max_query_bytes: int,
        max_parameter_bytes: int,
        statement_timeout_s: float,
    ) -> None:
        """`put_events` ingests event batches of a type and returns what was accepted;
        `query_slots` bound the schemas that may run a query (--max-queries);
        `statement_timeout_s` is what SqlInfo reports (--query-timeout)."""
        self._store = store
        self._query_slots = query_slots
        self._max_query_bytes = max_query_bytes
        self._version = version
        self._put_events = put_events
        self._locations = locations
        self._max_batch_bytes = max_batch_bytes
        self._max_parameter_bytes = max_parameter_bytes
        self._bindings = Bindings()
        self._statement_timeout_s = statement_timeout_s

    # ---- GetFlightInfo / GetSchema / DoGet ----

    def flight_info(
        self, descriptor: flight.FlightDescriptor, command: Message
    ) -> flight.FlightInfo:
        query = self._query(command)
        if query is not None:
            ticket = descriptors.encode_ticket(query)
            schema = self._schema(query)
        else:
            ticket = descriptors.encode_metadata_ticket(descriptor.command)
            schema = self._metadata_schema(command)
        endpoint = flight.FlightEndpoint(ticket, self._locations)
        return flight.FlightInfo(schema, descriptor, [endpoint], -1, -1)

    def schema(self, command: Message) -> pa.Schema:
        query = self._query(command)
        if query is not None:
            return self._schema(query)
        return self._metadata_schema(command)

    def metadata(self, ticket: descriptors.MetadataTicket) -> pa.Table:
        command = unpack(ticket.command)
        if command is None:
            raise Unsupported("this ticket")
        return self._metadata(command)

    def _query(self, command: Message) -> queries.Query | None:
        limit = self._max_query_bytes
        if isinstance(command, pb.CommandStatementQuery):
            _no_transaction(command)
            return queries.for_sql(self._store, command.query, max_bytes=limit)
        if isinstance(command, pb.CommandPreparedStatementQuery):
            handle = self._bindings.resolve(self._handle(command.prepared_statement_handle))
            return queries.for_sql(self._store, handle.sql, handle.parameters, max_bytes=limit)
        return None

    def _schema(self, query: queries.Query) -> pa.Schema:
        # DuckDB runs some queries to learn their schema: that takes a slot too.
        with self._query_slots.take():
            return queries.schema(self._store, query)

    def _prepared(self, sql: str) -> queries.Query:
        return queries.prepare(self._store, sql, max_bytes=self._max_query_bytes)

    def _metadata_schema(self, command: Message) -> pa.Schema:
        if isinstance(command, pb.CommandGetTables):
            return metadata.tables_schema(command.include_schema)
        return self._metadata(command).schema

    def _metadata(self, command: Message) -> pa.Table:
        schema_name = self._store.schema_name
        match command:
            case pb.CommandGetSqlInfo():
                return sql_info.sql_info(
                    command.info,
                    self._store.backend,
                    self._version,
                    statement_timeout_s=self._statement_timeout_s,
                )
            case pb.CommandGetCatalogs():
                return metadata.catalogs()
            case pb.CommandGetDbSchemas():
                return metadata.db_schemas(
                    schema_name,
                    _optional(command, "catalog"),
                    _optional(command, "db_schema_filter_pattern"),
                )
            case pb.CommandGetTables():
                return metadata.tables(
                    describe(self._store),
                    schema_name,
                    catalog=_optional(command, "catalog"),
                    schema_pattern=_optional(command, "db_schema_filter_pattern"),
                    name_pattern=_optional(command, "table_name_filter_pattern"),
                    types=command.table_types,
                    include_schema=command.include_schema,
                )
            case pb.CommandGetTableTypes():
                return metadata.table_types()
            case pb.CommandGetPrimaryKeys():
                return metadata.empty(metadata.PRIMARY_KEYS_SCHEMA)
            case pb.CommandGetExportedKeys() | pb.CommandGetImportedKeys():
                return metadata.empty(metadata.KEYS_SCHEMA)
            case pb.CommandGetCrossReference():
                return metadata.empty(metadata.KEYS_SCHEMA)
            case pb.CommandGetXdbcTypeInfo():
                return metadata.xdbc_type_info(_optional(command, "data_type"))
        raise Unsupported(
            f"Flight SQL command {command.DESCRIPTOR.name} with GetFlightInfo",
            "queries are CommandStatementQuery or CommandPreparedStatementQuery",
        )

    def session_option_values(self) -> dict[str, list[str]]:
        """The valid values of the session options, the default first: what
        GetCatalogs and GetDbSchemas answer ("" is the empty catalog, the views' own)."""
        catalogs = metadata.catalogs().column("catalog_name").to_pylist()
        schemas = metadata.db_schemas(self._store.schema_name, None, None)
        return {"catalog": ["", *catalogs], "schema": schemas.column("db_schema_name").to_pylist()}

    # ---- DoPut ----

    @staticmethod
    def put_role(command: Message) -> str:
        """Binding parameters to a query is a read; everything else put is a write."""
        return "reader" if isinstance(command, pb.CommandPreparedStatementQuery) else "writer"

    def put(
        self,
        command: Message,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        if isinstance(command, pb.CommandStatementIngest):
            event_type = _check_ingest(command, self._store.schema_name)
            batches = descriptors.put_batches(reader, self._max_batch_bytes)
            result = self._put_events(batches, event_type)
            reply = pb.DoPutUpdateResult(record_count=result.accepted)
        elif isinstance(command, pb.CommandPreparedStatementQuery):
            reply = self._bind(self._handle(command.prepared_statement_handle), reader)
        elif isinstance(command, pb.CommandStatementUpdate):
            raise Unsupported(
                "Flight SQL command CommandStatementUpdate",
                "SQL is read-only here; load events with bulk ingest (adbc_ingest) into "
                f"{INGEST_TABLE}",
            )
        else:
            raise Unsupported(f"Flight SQL command {command.DESCRIPTOR.name} with DoPut")
        writer.write(pa.py_buffer(reply.SerializeToString()))

    def _bind(
        self, handle: Handle, reader: flight.MetadataRecordBatchReader
    ) -> pb.DoPutPreparedStatementResult:
        parameters = descriptors.put_parameters(
            reader, self._max_parameter_bytes, self._max_batch_bytes
        )
        check_bound(parameters, self._prepared(handle.sql).parameter_count)
        if handle.types is not None:  # a union's values are cast as what they are
            parameters = cast_parameters(without_unions(parameters), handle.types)
        bound = self._bindings.bind(handle, parameters)
        return pb.DoPutPreparedStatementResult(prepared_statement_handle=bound.encode())

    def _handle(self, raw: bytes) -> Handle:
        return Handle.decode(raw, self._max_parameter_bytes)

    # ---- DoAction ----

    def actions(self) -> list[tuple[str, str]]:
        return list(_ACTIONS)

    def action(self, action_type: str, body: bytes) -> list[bytes]:
        """Answer a Flight SQL action; each returned item is one Result body."""
        if action_type == "CreatePreparedStatement":
            request = _expect(body, pb.ActionCreatePreparedStatementRequest, action_type)
            _no_transaction(request)
            return [pack(self._prepare(request.query))]
        if action_type == "ClosePreparedStatement":
            request = _expect(body, pb.ActionClosePreparedStatementRequest, action_type)
            self._bindings.close(self._handle(request.prepared_statement_handle))
            return []
        raise Unsupported(f"action {action_type!r}", "flightdeck serves " + _action_names())

    def _prepare(self, sql: str) -> pb.ActionCreatePreparedStatementResult:
        query = self._prepared(sql)
        types = parameter_schema(self._parameter_types(query))
        result = pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=Handle.new(query.sql, types).encode(),
            parameter_schema=types.serialize().to_pybytes(),
        )
        if query.parameter_count == 0:
            # With parameters the result types may depend on them: it comes with FlightInfo.
            result.dataset_schema = self._schema(query).serialize().to_pybytes()
        return result

    def _parameter_types(self, query: queries.Query) -> list[pa.DataType]:
        if query.parameter_count == 0:
            return []
        # The backend binds and plans the query to type them: that takes a slot too.
        with self._query_slots.take():
            return self._store.parameter_types(query.sql, query.parameter_count)


def _optional(message: Message, field: str):
    return getattr(message, field) if message.HasField(field) else None


def _no_transaction(message: Message) -> None:
    if message.HasField("transaction_id"):
        raise Unsupported("transactions", "every query and ingest commits on its own")


def _expect(body: bytes, message_class: type[Message], action_type: str) -> Message:
    message = unpack(body)
    if not isinstance(message, message_class):
        raise InvalidAction(
            rule="action-body", detail=f"{action_type} expects {message_class.DESCRIPTOR.name}"
        )
    return message


def _action_names() -> str:
    return ", ".join(name for name, _ in _ACTIONS)


def _event_type(table: str) -> str | None:
    """The event type bulk ingest into `table` loads, if it names one."""
    if table == INGEST_TABLE:
        return PAGEVIEW
    if table.startswith(TYPED_PREFIX):
        name = table.removeprefix(TYPED_PREFIX)
        problem = type_name_problem(name)
        if problem is not None:
            raise InvalidTarget(
                rule="event-type", detail=f"cannot ingest into {table!r}: {problem}"
            )
        return name
    return None


def _check_ingest(command: pb.CommandStatementIngest, schema_name: str) -> str:
    """Bulk ingest appends events through the pipeline; the type of its events."""
    schema = _optional(command, "schema")
    event_type = _event_type(command.table)
    if event_type is None or _optional(command, "catalog") or schema not in (None, "", schema_name):
        target = ".".join(
            p for p in (_optional(command, "catalog"), _optional(command, "schema")) if p
        )
        shown = f"{target}.{command.table}" if target else command.table
        raise InvalidTarget(
            rule="ingest-target",
            detail=f"cannot ingest into {shown!r}; bulk ingest appends page-view events to "
            f"{INGEST_TABLE!r} and events of any type TYPE to '{TYPED_PREFIX}TYPE'",
        )
    _check_ingest_mode(command)
    return event_type


def _check_ingest_mode(command: pb.CommandStatementIngest) -> None:
    if command.temporary:
        raise InvalidTarget(rule="ingest-target", detail="temporary tables are not supported")
    _no_transaction(command)
    if command.table_definition_options.if_exists not in (
        pb.TABLE_EXISTS_OPTION_APPEND,
        pb.TABLE_EXISTS_OPTION_UNSPECIFIED,
    ):
        raise InvalidTarget(
            rule="ingest-mode",
            detail=f"{INGEST_TABLE} exists and is only appended to; use mode 'append' "
            "(replace would discard accepted events, create fails on an existing table)",
        )
