"""Arrow Flight SQL beside the plain descriptors, on the same server and port.

BI tools, JDBC/ODBC drivers and ADBC speak Flight SQL: a command descriptor
holding a protobuf `Any`. `messages` builds the message classes from
`FlightSql.binpb`, compiled from `FlightSql.proto` by `make proto`; the rest
says what each command means for flightdeck.
"""

from .commands import unpack
from .service import INGEST_TABLE, FlightSqlService

__all__ = ["INGEST_TABLE", "FlightSqlService", "unpack"]
