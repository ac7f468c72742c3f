"""Who is calling, and what they may do: users, tokens, roles and the Flight middleware.

Without an auth file the server has no users: it then listens on loopback only
(unless told `--insecure`) and every caller may do everything.
"""

from .authenticator import Authenticator, Identity
from .file import ROLES, AuthFile, AuthFileError, add_token, add_user, load_auth_file, remove
from .middleware import (
    AUTH_MIDDLEWARE,
    AuthMiddlewareFactory,
    HandshakeAuthHandler,
    check_role,
    require,
)
from .throttle import LoginThrottle

__all__ = [
    "AUTH_MIDDLEWARE",
    "ROLES",
    "AuthFile",
    "AuthFileError",
    "AuthMiddlewareFactory",
    "Authenticator",
    "HandshakeAuthHandler",
    "Identity",
    "LoginThrottle",
    "add_token",
    "add_user",
    "check_role",
    "load_auth_file",
    "remove",
    "require",
]
