"""WebSocket authentication and the origin check of the upgrade request.

``BearerAuthMiddleware`` runs inside the session stack: a valid ``Authorization: Bearer
<token>`` sets the user; without the header the session's user stands.

``OriginCheck`` keeps Channels' ``AllowedHostsOriginValidator`` where it protects something:
cookie sessions, which a browser sends along to any site's WebSocket (cross-site WebSocket
hijacking). A browser page cannot put an ``Authorization`` header on a WebSocket, so an upgrade
that authenticates with a bearer token and carries no cookie is a non-browser client (they send
no ``Origin``) and is let through without one. An ``Origin`` that is present must still be
allowed, bearer or not: one rule for every browser-sent upgrade, and a token pasted into a
foreign page's script gains nothing.

``SessionMiddleware`` is Channels' own, reading sessions through ``passline.sessions`` (the
cached database sessions that outlive Redis being away), so an upgrade with a session cookie
is never answered 500 because the cache is down.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import AllowedHostsOriginValidator
from channels.sessions import CookieMiddleware, InstanceSessionWrapper
from django.contrib.auth.models import AnonymousUser

from ordering.services import api_token_user
from passline.sessions import SessionStore


@database_sync_to_async
def _user_for(token: str):
    return api_token_user(token=token) or AnonymousUser()


def _bearer(headers: dict[bytes, bytes]) -> bool:
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


class BearerAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            scope = {**scope, "user": await _user_for(token.strip()) if scheme.lower() == "bearer" else AnonymousUser()}
        return await super().__call__(scope, receive, send)


class OriginCheck:
    """The allowed-hosts origin check, except for a bearer-authenticated upgrade without cookies
    and without an ``Origin`` header."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        names = {name.lower() for name, _ in scope.get("headers") or []}
        if b"cookie" not in names and b"origin" not in names and _bearer(dict(scope.get("headers") or [])):
            return await self.inner(scope, receive, send)
        return await self.checked(scope, receive, send)


class _SessionWrapper(InstanceSessionWrapper):
    def __init__(self, scope: Any, send: Any) -> None:
        super().__init__(scope, send)
        # A class, as in channels' own __init__ (types-channels declares an instance).
        self.session_store = SessionStore  # type: ignore[assignment]


class SessionMiddleware:
    """Channels' SessionMiddleware with ``passline.sessions``' store."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        wrapper = _SessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, wrapper.send)


def auth_stack(inner: Any) -> Any:
    """Cookies, the session (surviving a cache outage), its user, then a bearer token's user."""
    return OriginCheck(CookieMiddleware(SessionMiddleware(AuthMiddleware(BearerAuthMiddleware(inner)))))
