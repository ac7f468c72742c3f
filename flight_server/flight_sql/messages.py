"""The Flight SQL message classes, built from the committed descriptor set.

The classes live in a private descriptor pool rather than protobuf's default one:
other Flight SQL modules (flightsql-dbapi, a vendor SDK) register the same
message names in the default pool, and two registrations of one name in one
process is an error. The type URLs still read arrow.flight.protocol.sql.<Message>.
"""

from __future__ import annotations

from importlib import resources

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "arrow.flight.protocol.sql"
_POOL = descriptor_pool.DescriptorPool()
for _file in descriptor_pb2.FileDescriptorSet.FromString(
    resources.files(__package__).joinpath("FlightSql.binpb").read_bytes()
).file:
    _POOL.Add(_file)


def _message(name: str) -> type:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


CommandGetSqlInfo = _message("CommandGetSqlInfo")
CommandGetXdbcTypeInfo = _message("CommandGetXdbcTypeInfo")
CommandGetCatalogs = _message("CommandGetCatalogs")
CommandGetDbSchemas = _message("CommandGetDbSchemas")
CommandGetTables = _message("CommandGetTables")
CommandGetTableTypes = _message("CommandGetTableTypes")
CommandGetPrimaryKeys = _message("CommandGetPrimaryKeys")
CommandGetExportedKeys = _message("CommandGetExportedKeys")
CommandGetImportedKeys = _message("CommandGetImportedKeys")
CommandGetCrossReference = _message("CommandGetCrossReference")
CommandStatementQuery = _message("CommandStatementQuery")
CommandPreparedStatementQuery = _message("CommandPreparedStatementQuery")
ActionCreatePreparedStatementRequest = _message("ActionCreatePreparedStatementRequest")
ActionCreatePreparedStatementResult = _message("ActionCreatePreparedStatementResult")
ActionClosePreparedStatementRequest = _message("ActionClosePreparedStatementRequest")
DoPutPreparedStatementResult = _message("DoPutPreparedStatementResult")
CommandStatementUpdate = _message("CommandStatementUpdate")
CommandStatementIngest = _message("CommandStatementIngest")
DoPutUpdateResult = _message("DoPutUpdateResult")
ActionCancelQueryRequest = _message("ActionCancelQueryRequest")
ActionCancelQueryResult = _message("ActionCancelQueryResult")

# CommandStatementIngest.TableDefinitionOptions.TableExistsOption values.
TABLE_EXISTS_OPTION_UNSPECIFIED = 0
TABLE_EXISTS_OPTION_APPEND = 2
