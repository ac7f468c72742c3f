"""The Flight SQL message classes, built from the committed descriptor set (see
../proto_messages.py for why they live in a private pool)."""

from __future__ import annotations

from ..proto_messages import message_classes

_message = message_classes(__package__, "FlightSql.binpb", "arrow.flight.protocol.sql")


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
