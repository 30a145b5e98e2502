"""The JSON API of CONTRACT.md, mounted at ``/api/v1/``: one django-ninja API assembled from
a router per app (``ordering.api``, ``billing.api``, ``ordering.kitchen_api``).

Every failure leaves as ``{"error": {"code", "message"}}`` with its status: the exception
handlers below translate ninja's errors and the domain errors (``ordering.exceptions`` and
``billing.exceptions``), and unknown URLs under ``/api/v1/`` answer in the same shape.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled, ValidationError
from ninja.operation import Operation
from ninja.parser import Parser

from billing.api import router as wallet_router
from billing.exceptions import CardDeclined, KeyReused
from ordering.api import InvalidCredentials, LockedOut
from ordering.api import router as ordering_router
from ordering.api_auth import CsrfFailed, api_auth
from ordering.exceptions import IdempotencyConflict, InvalidTransition, NotFound, OrderingError, PermissionDenied
from ordering.kitchen_api import router as kitchen_router
from ordering.services.accounts import InvalidAccount, InvalidRefreshToken
from passline import throttles
from passline.errors import RETRY_AFTER_SECONDS, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE, database_unavailable

logger = logging.getLogger(__name__)

DESCRIPTION = """
Order food from Passline's restaurants and follow the orders through the kitchen.

**Authentication.** `POST /auth/token` gives a token; send it as `Authorization: Bearer <token>`.
It works until `expires_at` (24 hours by default); `POST /auth/refresh` exchanges the
single-use `refresh_token` that came with it for a new pair. `POST /auth/logout` revokes the
token; signing out of the site and changing the password revoke every token of the account.
The browser site's own session cookie is accepted too; session requests that change
something must carry the `X-CSRFToken` header.

**Rate limits.** Every operation is limited per account and per address, placing orders,
registering, signing in and topping up more tightly: over a limit the answer is `429
rate_limited` with `Retry-After` (seconds), and nothing was done. Repeated wrong passwords lock
that username for the caller's address: `429 too_many_attempts` with `Retry-After`.

**Errors.** Every error body is `{"error": {"code": "<machine_code>", "message": "<text>"}}`,
sometimes with `field` or `details`. 400 malformed JSON (`malformed_json`), 401 not
authenticated (`not_authenticated`, `invalid_credentials`, `invalid_refresh_token`), 403 not allowed (`forbidden`,
`csrf_failed`), 404 not found (`not_found`, also for another customer's order), 409 conflict
(`invalid_transition`, `idempotency_conflict`, `username_taken`), 429 too many requests
(`rate_limited`, `too_many_attempts`, with `Retry-After`), 402 payment refused
(`card_declined`), 415 body not JSON
(`unsupported_media_type`), 422 invalid input (`invalid_request` with field `details` for a
body that does not match the schema; domain codes such as `unknown_restaurant`,
`unknown_menu_item`, `out_of_stock`, `item_unavailable`, `restaurant_closed`, `total_out_of_range`,
`invalid_amount`, `invalid_card`), 413 body too large (`payload_too_large`), 503 briefly
unavailable (`unavailable`, with a `Retry-After` header in seconds: nothing was changed, and a
retry, with the same `Idempotency-Key` for a POST, is safe). Each operation lists the codes
it can answer. Never a 500 for bad input.

**Money** is a decimal string with two places (`"12.50"`). Prices sent by a client are ignored:
the server computes every total. **Ids** are opaque integers.

**Idempotency.** `POST /orders` and `POST /wallet/top-up` honour an `Idempotency-Key` header
(1 to 255 characters, scoped to the caller): the same key with the same body answers as the
first request did (the order or the balance in its current state) with the header
`Idempotent-Replayed: true`, creating nothing and moving no money; the same key with a
different body is a `409 idempotency_conflict`.

**Wallet.** Orders are paid from the wallet. `POST /wallet/top-up` charges a card (simulated
provider: `4242424242424242` succeeds, `4000000000000002` is declined) and credits the
wallet; a declined card is `402 card_declined` and changes nothing. Amounts sent by a client
must be decimal strings (`"20.00"`); a JSON number is `422 invalid_amount`.
"""


class JsonParser(Parser):
    """JSON bodies only: another content type is a 415, and NaN/Infinity are not JSON."""

    def parse_body(self, request: HttpRequest) -> Any:
        content_type = (request.content_type or "").lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise UnsupportedMediaType(content_type)
        data = json.loads(request.body, parse_constant=_refuse_constant)
        if not isinstance(data, dict):
            # Every body of this API is an object; say so rather than list its missing fields.
            raise NotAnObject()
        return data


class UnsupportedMediaType(Exception):
    pass


class NotAnObject(Exception):
    pass


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON.")


class PasslineAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        """``ordering_api_<view>``, whichever router holds the view: the ids published when the
        whole API was ``ordering/api.py``, which generated clients name their methods by."""
        return f"ordering_api_{operation.view_func.__name__}"

    def _get_urls(self) -> list[URLPattern | URLResolver]:
        """ninja's routes, each answering 404/405 in the error shape, then a JSON 404 for the rest."""
        urls = super()._get_urls()
        for pattern in urls:
            # The wrapper is synchronous; an async ninja view would keep ninja's own 405 body.
            if isinstance(pattern, URLPattern) and not iscoroutinefunction(pattern.callback):
                pattern.callback = _json_fallbacks(pattern.callback, self)
        # Any path at all, line breaks included (``.`` stops at a newline, and such a path fell
        # through to the site's HTML 404; an inline (?s) flag would break reverse()).
        urls.append(re_path(r"^[\s\S]*$", csrf_exempt(functools.partial(_unknown_url, api=self)), name="api-unknown"))
        return urls


def _json_fallbacks(view: Callable[..., HttpResponse], api: NinjaAPI) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return _error(api, request, 404, "not_found", "Nothing here. See /api/v1/docs.")
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response.get("Allow", "")
            answer = _error(api, request, 405, "method_not_allowed", f"Use one of: {allowed}.")
            answer["Allow"] = allowed
            return answer
        return response

    return wrapped


def _unknown_url(request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
    return _error(api, request, 404, "not_found", "There is no such API endpoint. See /api/v1/docs.")


api = PasslineAPI(
    title="Passline API",
    version="1",
    description=DESCRIPTION,
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=api_auth,
    parser=JsonParser(),
    # Every operation, per account and per address; tighter lists on some (passline.throttles).
    throttle=throttles.DEFAULT,
)
# Accounts, restaurants and orders; the wallet; the kitchen (the order the document lists them in).
api.add_router("", ordering_router)
api.add_router("", wallet_router)
api.add_router("", kitchen_router)


# --- errors ---------------------------------------------------------------------------


def _error(api: NinjaAPI, request: HttpRequest, status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    body.update({key: value for key, value in extra.items() if value not in (None, {}, [])})
    return api.create_response(request, {"error": body}, status=status)


@api.exception_handler(ValidationError)
def _on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details = [
        {
            # ("body", "payload", "items", 0, "quantity") -> ["body", "items", 0, "quantity"]
            "loc": [part for part in error.get("loc", ()) if isinstance(part, (str, int)) and part != "payload"],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors
    ]
    first = details[0] if details else None
    where = ".".join(str(p) for p in first["loc"][1:]) if first else ""
    message = f"Invalid request: {where + ': ' if where else ''}{first['msg'] if first else 'bad input'}."
    return _error(api, request, 422, "invalid_request", message, field=where or None, details=details)


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


@api.exception_handler(HttpError)
def _on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    cause = exc.__cause__
    if isinstance(cause, UnsupportedMediaType):
        message = "Send the body as JSON (Content-Type: application/json)."
        return _error(api, request, 415, "unsupported_media_type", message)
    if isinstance(cause, NotAnObject):
        details = [{"loc": ["body"], "msg": "Input should be a JSON object", "type": "model_type"}]
        return _error(api, request, 422, "invalid_request", "The body must be a JSON object.", details=details)
    if exc.status_code == 400 and isinstance(cause, (ValueError, RecursionError)):
        return _error(api, request, 400, "malformed_json", "The body is not valid JSON.")
    if isinstance(exc, InvalidCredentials):
        return _error(api, request, 401, "invalid_credentials", exc.message)
    if isinstance(exc, CsrfFailed):
        return _error(api, request, 403, "csrf_failed", exc.message)
    if isinstance(exc, AuthenticationError):
        message = "Authentication required: send Authorization: Bearer <token>."
        return _error(api, request, 401, "not_authenticated", message)
    if isinstance(exc, AuthorizationError):
        return _error(api, request, 403, "forbidden", "You may not do this.")
    if isinstance(exc, LockedOut):
        return throttles.lockout_response(request)
    if isinstance(exc, Throttled):
        message = "Too many requests: slow down and retry after Retry-After seconds."
        response = _error(api, request, 429, throttles.RATE_LIMITED_CODE, message)
        response["Retry-After"] = throttles.retry_after(exc.wait)
        return response
    code = _HTTP_CODES.get(exc.status_code, "error")
    return _error(api, request, exc.status_code, code, exc.message)


@api.exception_handler(Http404)
def _on_http404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(api, request, 404, "not_found", "Not found.")


@api.exception_handler(OrderingError)
def _on_domain_error(request: HttpRequest, exc: OrderingError) -> HttpResponse:
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, PermissionDenied):
        status = 403
    elif isinstance(exc, CardDeclined):
        status = 402
    elif isinstance(exc, (InvalidTransition, IdempotencyConflict, KeyReused)):
        status = 409
    elif isinstance(exc, InvalidAccount) and exc.code == "username_taken":
        status = 409
    elif isinstance(exc, InvalidRefreshToken):
        status = 401
    else:
        status = 422
    details = {key: value for key, value in exc.details.items() if key != "field"}
    field = exc.details.get("field")
    return _error(api, request, status, exc.code, exc.message, field=field, details=_jsonable(details))


@api.exception_handler(RequestDataTooBig)
def _on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(api, request, 413, "payload_too_large", "The request body is too large.")


@api.exception_handler(SuspiciousOperation)
def _on_suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    return _error(api, request, 400, "bad_request", "The request could not be understood.")


@api.exception_handler(DatabaseError)
def _on_database_error(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    if not database_unavailable(exc):
        return _on_unexpected(request, exc)
    # Lost, refused or locked out: the transaction rolled back, so a retry is safe.
    logger.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
    response = _error(api, request, 503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@api.exception_handler(Exception)
def _on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.error("unhandled API error on %s %s", request.method, request.path, exc_info=exc)
    return _error(api, request, 500, "internal_error", "Something went wrong on our side; it has been logged.")


def _jsonable(value: Any) -> Any:
    """Domain error details hold ids, names and statuses; anything else becomes its text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
