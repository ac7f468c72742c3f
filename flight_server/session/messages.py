"""The Flight session message classes, built from the committed descriptor set (see
../proto_messages.py for why they live in a private pool)."""

from __future__ import annotations

from ..proto_messages import message_classes

_message = message_classes(__package__, "FlightSession.binpb", "arrow.flight.protocol")


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
