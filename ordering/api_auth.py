"""Who is calling the API: a bearer token, or the browser site's own session.

A request that carries an ``Authorization`` header is judged by that header alone, so a bad
token is a 401 even when a session cookie rides along. Session requests are CSRF-checked on
unsafe methods (a cookie is sent by the browser whoever wrote the page); bearer requests
need no CSRF check because no browser attaches the header by itself.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from ordering import services


class CsrfFailed(HttpError):
    def __init__(self) -> None:
        super().__init__(403, "CSRF verification failed. Send the X-CSRFToken header with session requests.")


class BearerAuth(HttpBearer):
    """``Authorization: Bearer <token>`` from ``POST /api/v1/auth/token``: a live token only
    (not expired, not revoked, issued since the user's last password change)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return services.api_token_user(token=token.strip())


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, as ``BearerAuth`` reads it."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class SessionAuth(APIKeyCookie):
    """The Django session of the browser site, CSRF-checked on unsafe methods."""

    param_name: str = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def _get_key(self, request: HttpRequest) -> str | None:
        # ninja's cookie auth checks CSRF before it knows whether anyone is logged in, which
        # would answer an anonymous POST with 403; here the check follows authentication.
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if "Authorization" in request.headers:
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if check_csrf(request) is not None:
            raise CsrfFailed()
        return user


api_auth = [BearerAuth(), SessionAuth()]
