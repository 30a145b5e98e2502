"""Whether what authenticated a live socket still holds.

A socket is authorized when it connects, and may then stay open for days. What let it in can
go meanwhile: the browser session logs out or is flushed, the password changes (every other
session of the user ends, as on the site), the account is deactivated, the bearer token
expires or is revoked. ``LiveConsumer`` asks :func:`current_user` on a timer and before it
handles a client frame, and closes the socket with 4401 when it answers None; whether the user
may still see what the socket shows (staff of the restaurant, say) is the consumer's own
``still_allowed()``, asked right after with the fresh user (4403 when not).

The session check is Django's own (``django.contrib.auth.get_user``): the session's user, its
backend, and its auth hash against the user's current one (or a fallback secret's), but
read-only: it never cycles or flushes the session, which is the site's to do on the browser's
next request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.utils.crypto import constant_time_compare

from ordering.services.accounts import api_token_user
from passline.sessions import SessionStore


@dataclass(frozen=True)
class Credentials:
    """What authenticated a socket: a bearer token, or a browser session, for ``user_id``."""

    kind: Literal["token", "session"]
    secret: str  # the token, or the session key
    user_id: int

    def __repr__(self) -> str:  # never the secret in a log line
        return f"Credentials(kind={self.kind!r}, user_id={self.user_id})"


def credentials_of(scope: Mapping[str, Any]) -> Credentials | None:
    """How the socket's user was authenticated (live/auth.py); None for an anonymous socket."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None
    authorization = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    if authorization:
        # BearerAuthMiddleware: an Authorization header authenticates only as a bearer token.
        return Credentials("token", authorization.partition(" ")[2].strip(), user.pk)
    session_key = getattr(scope.get("session"), "session_key", None)
    if not session_key:
        return None
    return Credentials("session", session_key, user.pk)


def session_user(session_key: str) -> Any:
    """The user a stored session still authenticates, or None (Django's check, read-only)."""
    session = SessionStore(session_key=session_key)
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return None  # logged out, flushed or expired
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return None  # deleted, or deactivated (the backend refuses inactive users)
    session_hash = session.get(HASH_SESSION_KEY)
    if not session_hash:
        return None
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return user
    if any(constant_time_compare(session_hash, h) for h in user.get_session_auth_fallback_hash()):
        return user
    return None  # the password changed since this session logged in


def current_user(credentials: Credentials) -> Any:
    """The socket's user, fresh from the database, if its credentials still hold; else None."""
    if credentials.kind == "token":
        user = api_token_user(token=credentials.secret)
    else:
        user = session_user(credentials.secret)
    if user is None or user.pk != credentials.user_id or not user.is_active:
        return None
    return user
