"""The Flight session actions: SetSessionOptions, GetSessionOptions, CloseSession.

The options are the ones a BI client sets on connect: `catalog` and `schema`
(ADBC's `adbc_current_catalog` / `adbc_current_db_schema`, JDBC's
`setCatalog` / `setSchema`). Their valid values are what GetCatalogs and
GetDbSchemas answer (the empty catalog: flightdeck's views have none); an
unknown name or value is answered in SetSessionOptionsResult's errors, keyed by
the option's name, as the spec says, and logged with the value refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from google.protobuf.message import DecodeError, Message

from ..refusals import InvalidAction
from . import messages as pb
from .store import Key, SessionStore

__all__ = ["SESSION_ACTIONS", "SessionActions"]

log = logging.getLogger("flightdeck.session")

SESSION_ACTIONS = {
    "SetSessionOptions": "Set this session's catalog or schema (as GetCatalogs and "
    "GetDbSchemas name them)",
    "GetSessionOptions": "This session's options: catalog and schema",
    "CloseSession": "End this session and forget its options",
}


class SessionActions:
    def __init__(self, store: SessionStore, valid: Callable[[], dict[str, list[str]]]) -> None:
        """`valid` maps each option to its valid values, the default first."""
        self._store = store
        self._valid = valid

    def run(self, action_type: str, key: Key, body: bytes) -> list[bytes]:
        """One session action for session `key`; each returned item is one Result body."""
        if action_type == "SetSessionOptions":
            request = _parse(body, pb.SetSessionOptionsRequest, action_type)
            return [self._set(key, request).SerializeToString()]
        if action_type == "GetSessionOptions":
            _parse(body, pb.GetSessionOptionsRequest, action_type)
            return [self._get(key).SerializeToString()]
        _parse(body, pb.CloseSessionRequest, action_type)
        self._store.close(key)
        return [pb.CloseSessionResult(status=pb.CLOSED).SerializeToString()]

    def _get(self, key: Key) -> Message:
        options = {name: values[0] for name, values in self._valid().items()}
        options.update(self._store.options(key))
        result = pb.GetSessionOptionsResult()
        for name, value in options.items():
            result.session_options[name].string_value = value
        return result

    def _set(self, key: Key, request: Message) -> Message:
        valid = self._valid()
        result = pb.SetSessionOptionsResult()
        changed: dict[str, str | None] = {}
        for name, value in request.session_options.items():
            kind = value.WhichOneof("option_value")
            if name not in valid:
                result.errors[name].value = pb.INVALID_NAME
                log.info("session option %r refused: flightdeck knows %s", name, list(valid))
            elif kind is None:  # an unset value resets the option
                changed[name] = None
            elif kind != "string_value" or value.string_value not in valid[name]:
                result.errors[name].value = pb.INVALID_VALUE
                log.info(
                    "session option %s=%r refused: valid values are %s",
                    name,
                    getattr(value, kind),
                    valid[name],
                )
            else:
                changed[name] = value.string_value
        if changed:
            self._store.update(key, changed)
        return result


def _parse(body: bytes, message_class: type[Message], action_type: str) -> Message:
    try:
        return message_class.FromString(body)
    except DecodeError:
        raise InvalidAction(
            rule="action-body", detail=f"{action_type} expects {message_class.DESCRIPTOR.name}"
        ) from None
