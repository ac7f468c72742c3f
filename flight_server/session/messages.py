"""The Flight session message classes, built from the committed descriptor set.

A private descriptor pool, as for the Flight SQL messages: another module in the
process (a client library) may register the same names in protobuf's default pool.
"""

from __future__ import annotations

from importlib import resources

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "arrow.flight.protocol"
_POOL = descriptor_pool.DescriptorPool()
for _file in descriptor_pb2.FileDescriptorSet.FromString(
    resources.files(__package__).joinpath("FlightSession.binpb").read_bytes()
).file:
    _POOL.Add(_file)


def _message(name: str) -> type:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


SessionOptionValue = _message("SessionOptionValue")
SetSessionOptionsRequest = _message("SetSessionOptionsRequest")
SetSessionOptionsResult = _message("SetSessionOptionsResult")
GetSessionOptionsRequest = _message("GetSessionOptionsRequest")
GetSessionOptionsResult = _message("GetSessionOptionsResult")
CloseSessionRequest = _message("CloseSessionRequest")
CloseSessionResult = _message("CloseSessionResult")

# SetSessionOptionsResult.ErrorValue and CloseSessionResult.Status values.
INVALID_NAME = 1
INVALID_VALUE = 2
CLOSED = 1
