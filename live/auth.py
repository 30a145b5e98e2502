"""WebSocket authentication by ``Authorization: Bearer <token>`` on the upgrade request.

Runs inside AuthMiddlewareStack: a valid bearer token sets the user; without the header the
session's user stands.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from ordering.services import api_token_user


@database_sync_to_async
def _user_for(token: str):  # type: ignore[no-untyped-def]
    return api_token_user(token=token) or AnonymousUser()


class BearerAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            scope = {**scope, "user": await _user_for(token.strip()) if scheme.lower() == "bearer" else AnonymousUser()}
        return await super().__call__(scope, receive, send)
