"""Flight sessions: the cookie that names one, its bounded store, and its actions."""

from .actions import SESSION_ACTIONS, SessionActions
from .cookie import SESSION_MIDDLEWARE, SessionCookieFactory, session_id_of
from .store import SessionStore

__all__ = [
    "SESSION_ACTIONS",
    "SESSION_MIDDLEWARE",
    "SessionActions",
    "SessionCookieFactory",
    "SessionStore",
    "session_id_of",
]
