"""The JSON API of CONTRACT.md, mounted at ``/api/v1/``.

Views are thin: parse (ninja and ``api_schemas``), call one service or selector, serialize.
Every failure leaves as ``{"error": {"code", "message"}}`` with its status: the exception
handlers at the bottom translate ninja's errors and the domain errors of
``ordering.exceptions``, and unknown URLs under ``/api/v1/`` answer in the same shape.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.contrib.auth import authenticate
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Status
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled, ValidationError
from ninja.parser import Parser

from billing import selectors as billing_selectors
from billing.exceptions import CardDeclined, InvalidAmount, InvalidCard, KeyReused
from billing.services.topups import wallet_top_up
from billing.services.wallets import MAX_MOVEMENT
from ordering import selectors, services
from ordering.api_auth import CsrfFailed, api_auth
from ordering.api_schemas import (
    MAX_ID,
    ErrorOut,
    ItemDoneIn,
    KitchenTicketOut,
    MenuItemOut,
    OrderIn,
    OrderOut,
    PriorityIn,
    RegisterIn,
    RegisterOut,
    RestaurantOut,
    TokenIn,
    TokenOut,
    TopUpIn,
    TopUpOut,
    TransitionIn,
    WalletOut,
    kitchen_ticket_out,
    menu_item_out,
    money,
    order_out,
    restaurant_out,
    wallet_out,
)
from ordering.exceptions import (
    IdempotencyConflict,
    InvalidOrder,
    InvalidTransition,
    NotFound,
    OrderingError,
    PermissionDenied,
)
from ordering.services.accounts import InvalidAccount
from passline.errors import RETRY_AFTER_SECONDS, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE, database_unavailable

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

DESCRIPTION = """
Order food from Passline's restaurants and follow the orders through the kitchen.

**Authentication.** `POST /auth/token` gives a token; send it as `Authorization: Bearer <token>`.
The browser site's own session cookie is accepted too; session requests that change
something must carry the `X-CSRFToken` header.

**Errors.** Every error body is `{"error": {"code": "<machine_code>", "message": "<text>"}}`,
sometimes with `field` or `details`. 400 malformed JSON (`malformed_json`), 401 not
authenticated (`not_authenticated`, `invalid_credentials`), 403 not allowed (`forbidden`,
`csrf_failed`), 404 not found (`not_found`, also for another customer's order), 409 conflict
(`invalid_transition`, `idempotency_conflict`, `username_taken`), 402 payment refused
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
)

# --- the answers of each operation, for the schema -------------------------------------

# The errors an operation can answer, each status with the machine codes it carries: every
# status is declared with the error shape and this text (and every operation may answer 503).
AUTH_ERRORS = {
    401: "`not_authenticated`: no valid bearer token (or browser session).",
    403: "`forbidden`: not allowed for this account; `csrf_failed`: a session request without `X-CSRFToken`.",
}
INVALID_REQUEST = ("`invalid_request` (with `field` and `details`): the body does not match the schema: a field "
                   "missing, of the wrong type, out of range or too long, text with NUL characters or invalid "
                   "Unicode, a body that is not a JSON object.")
BODY_ERRORS = {
    400: "`malformed_json`: the body is not valid JSON.",
    413: "`payload_too_large`: the body is over the upload limit.",
    415: "`unsupported_media_type`: the body is not sent as `application/json`.",
    422: INVALID_REQUEST,
}
UNAVAILABLE = ("`unavailable`: the database was briefly unavailable and nothing was changed; retry after "
               "`Retry-After` seconds (a POST with the same `Idempotency-Key`, which is safe).")
IDEMPOTENCY_KEY_422 = "`invalid_idempotency_key`: the `Idempotency-Key` header is not 1 to 255 characters."


def answers(success: dict[int, Any], errors: dict[int, str], **openapi_extra: Any) -> dict[str, Any]:
    """``response`` and ``openapi_extra`` of an operation: its success, its errors in the error
    shape with the codes each carries, and the 503 every operation may answer."""
    errors = {**errors, 503: UNAVAILABLE}
    documented: dict[int, Any] = {status: {"description": text} for status, text in errors.items()}
    documented[503]["headers"] = {"Retry-After": {"description": "Seconds to wait before a retry.",
                                                  "schema": {"type": "integer"}}}
    return {"response": {**success, **{status: ErrorOut for status in errors}},
            "openapi_extra": {"responses": documented, **openapi_extra}}


def idempotency_key(what: str) -> dict[str, Any]:
    return {"in": "header", "name": IDEMPOTENCY_HEADER, "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": f"A unique key per intended {what}, e.g. a UUID."}


# --- accounts -------------------------------------------------------------------------


class InvalidCredentials(HttpError):
    def __init__(self) -> None:
        super().__init__(401, "Wrong username or password.")


@api.post(
    "/auth/register",
    auth=None,
    **answers({201: RegisterOut}, {
        **BODY_ERRORS,
        409: "`username_taken`: the username exists.",
        422: f"{INVALID_REQUEST} With `field`: `invalid_username` (empty, or with characters other "
             "than letters, digits and @ . + - _), `invalid_email`, `weak_password`.",
    }),
    tags=["auth"],
    summary="Create a customer account",
    description="409 `username_taken` when the username exists; 422 with `field` for a bad username, "
    "email (`invalid_email`) or a weak password (`weak_password`).",
)
def register(request: HttpRequest, payload: RegisterIn) -> Status[dict[str, Any]]:
    user = services.customer_register(username=payload.username, email=payload.email, password=payload.password)
    return Status(201, {"id": user.pk, "username": user.get_username()})


@api.post(
    "/auth/token",
    auth=None,
    **answers({200: TokenOut}, {
        **BODY_ERRORS,
        401: "`invalid_credentials`: wrong username or password, or an inactive account.",
    }),
    tags=["auth"],
    summary="Get a bearer token",
    description="401 `invalid_credentials` for a wrong username or password or an inactive account.",
)
def token(request: HttpRequest, payload: TokenIn) -> dict[str, str]:
    user = authenticate(request, username=payload.username, password=payload.password)
    if user is None:
        raise InvalidCredentials()
    return {"token": services.api_token_issue(user=user)}


# --- restaurants ----------------------------------------------------------------------


# Browsing is public, as on the site: a visitor sees restaurants and menus before signing in.
@api.get(
    "/restaurants", auth=None, **answers({200: list[RestaurantOut]}, {}), tags=["restaurants"], summary="Restaurants"
)
def restaurants(request: HttpRequest) -> list[dict[str, Any]]:
    return [restaurant_out(r) for r in selectors.restaurant_list()]


@api.get(
    "/restaurants/{int:restaurant_id}/menu",
    auth=None,
    **answers({200: list[MenuItemOut]}, {404: "`not_found`: there is no such restaurant."}),
    tags=["restaurants"],
    summary="A restaurant's menu",
)
def menu(request: HttpRequest, restaurant_id: int) -> list[dict[str, Any]]:
    _check_id(restaurant_id)
    restaurant = selectors.restaurant_get(restaurant_id=restaurant_id)
    return [menu_item_out(item) for item in selectors.menu_items(restaurant_id=restaurant.pk)]


# --- orders ---------------------------------------------------------------------------


@api.post(
    "/orders",
    **answers({201: OrderOut}, {
        **AUTH_ERRORS,
        **BODY_ERRORS,
        409: "`idempotency_conflict`: the `Idempotency-Key` was used for a different order.",
        422: f"{INVALID_REQUEST} `unknown_restaurant`; `restaurant_closed`; `unknown_menu_item` (with "
             "`details.menu_item_ids`): a dish that does not exist or is another restaurant's; `item_unavailable`; "
             "`out_of_stock`; `invalid_quantity`; `missing_address`; `total_out_of_range`: a total of 0.00 or over "
             f"{MAX_MOVEMENT:,.2f}, which the wallet can never pay; {IDEMPOTENCY_KEY_422}",
    }, parameters=[idempotency_key("order")]),
    tags=["orders"],
    summary="Place an order",
    description="Creates the order in `pending_payment`; the total is computed from the menu's prices. "
    "Send an `Idempotency-Key` header to retry safely: a retry with the same body answers 201 with the "
    "first order and `Idempotent-Replayed: true`; a different body under the same key is 409 "
    "`idempotency_conflict`. 422 codes: `invalid_request`, `unknown_restaurant`, `restaurant_closed`, "
    "`unknown_menu_item`, `item_unavailable`, `out_of_stock`, `invalid_quantity`, `total_out_of_range`, "
    "`invalid_idempotency_key`. A 503 `unavailable` changed nothing: retry with the same key.",
)
def order_create(request: HttpRequest, payload: OrderIn, response: HttpResponse) -> Status[dict[str, Any]]:
    customer = request.auth  # type: ignore[attr-defined]
    order, created = services.order_place(
        customer=customer,
        request=services.OrderRequest(
            restaurant_id=payload.restaurant_id,
            items=[(line.menu_item_id, line.quantity) for line in payload.items],
            delivery_address=payload.delivery_address,
            notes=payload.notes or "",
        ),
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    if not created:
        response[REPLAYED_HEADER] = "true"
        order = selectors.customer_order(customer=customer, order_id=order.pk)
    return Status(201, order_out(order))


@api.get("/orders", **answers({200: list[OrderOut]}, AUTH_ERRORS), tags=["orders"], summary="My orders, newest first")
def order_list(request: HttpRequest) -> list[dict[str, Any]]:
    customer = request.auth  # type: ignore[attr-defined]
    return [order_out(order) for order in selectors.customer_orders(customer=customer)]


@api.get(
    "/orders/{int:order_id}",
    **answers({200: OrderOut}, {**AUTH_ERRORS, 404: "`not_found`: no such order of yours."}),
    tags=["orders"],
    summary="One of my orders",
    description="Another customer's order is a 404, exactly like an order that does not exist.",
)
def order_get(request: HttpRequest, order_id: int) -> dict[str, Any]:
    _check_id(order_id)
    return order_out(selectors.customer_order(customer=request.auth, order_id=order_id))  # type: ignore[attr-defined]


@api.post(
    "/orders/{int:order_id}/cancel",
    **answers({200: OrderOut}, {
        **AUTH_ERRORS,
        404: "`not_found`: no such order of yours.",
        409: "`invalid_transition`: the kitchen has accepted the order, or it has ended.",
    }),
    tags=["orders"],
    summary="Cancel one of my orders",
    description="Possible while `pending_payment` or `paid`; afterwards 409 `invalid_transition`. "
    "A paid order is refunded in full.",
)
def order_cancel(request: HttpRequest, order_id: int) -> dict[str, Any]:
    _check_id(order_id)
    customer = request.auth  # type: ignore[attr-defined]
    services.order_cancel(order_id=order_id, customer=customer)
    return order_out(selectors.customer_order(customer=customer, order_id=order_id))


# --- wallet ---------------------------------------------------------------------------

# A plain decimal: digits, an optional point and decimals, an optional sign (so that "-5"
# is told it must be more than zero). money() then applies the rules on the value.
AMOUNT_TEXT = re.compile(r"-?\d{1,20}(\.\d{1,20})?")


def _amount_text(value: object) -> str:
    """The amount exactly as the contract has it: a decimal string, never a JSON number."""
    if not isinstance(value, str):
        raise InvalidAmount('Send the amount as a decimal string such as "20.00", not as a JSON number.')
    if not AMOUNT_TEXT.fullmatch(value):
        raise InvalidAmount(f'{value[:40]!r} is not an amount: send a decimal string such as "20.00".')
    return value


def _card_text(value: object) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidCard("Send the card number as a string of 12 to 19 digits.")
    return value


def _idempotency_key(request: HttpRequest) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 1 <= len(key) <= 255:
        raise InvalidOrder("The Idempotency-Key must be 1 to 255 characters.", code="invalid_idempotency_key")
    return key


@api.get("/wallet", **answers({200: WalletOut}, AUTH_ERRORS), tags=["wallet"], summary="My wallet's balance")
def wallet(request: HttpRequest) -> dict[str, Any]:
    return wallet_out(billing_selectors.wallet_summary(user=request.auth))  # type: ignore[attr-defined]


@api.post(
    "/wallet/top-up",
    **answers({200: TopUpOut}, {
        **AUTH_ERRORS,
        **BODY_ERRORS,
        402: "`card_declined`: the card was declined; nothing changed.",
        409: "`idempotency_conflict`: the `Idempotency-Key` was used for a different top-up.",
        422: f"{INVALID_REQUEST} `invalid_amount`: an amount that is not a decimal string (a JSON number), is 0 or "
             f"less, has more than two decimals or is over {MAX_MOVEMENT:,.2f}; `invalid_card`: a card number that "
             f"is not 12 to 19 digits or fails the Luhn check; {IDEMPOTENCY_KEY_422}",
    }, parameters=[idempotency_key("top-up")]),
    tags=["wallet"],
    summary="Top up my wallet by card",
    description="Charges the card and credits the wallet; answers with the new balance. "
    "402 `card_declined` when the card is declined (nothing changes). 422 `invalid_amount` for an amount "
    "that is not a decimal string, is 0 or less, has more than two decimals or is over 10000.00; 422 "
    "`invalid_card` for a card number that is not 12 to 19 digits or fails the Luhn check; 422 "
    "`invalid_idempotency_key`. Send an `Idempotency-Key` header to retry safely: a retry with the same body "
    "answers as the first request did (200 with the balance as it is now and `Idempotent-Replayed: true`, or "
    "402 again) and charges nothing; a different body under the same key is 409 `idempotency_conflict`.",
)
def wallet_top_up_view(request: HttpRequest, payload: TopUpIn, response: HttpResponse) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    amount, card_number = _amount_text(payload.amount), _card_text(payload.card_number)
    key = _idempotency_key(request)
    # Seen before the call: a replay. (A concurrent first use is answered the same way but
    # without the header; the service does not say which of the two it was.)
    replayed = key is not None and billing_selectors.top_up_by_key(user=user, idempotency_key=key) is not None
    top_up = wallet_top_up(user=user, amount=amount, card_number=card_number, idempotency_key=key)
    if replayed:
        response[REPLAYED_HEADER] = "true"
    entry = billing_selectors.top_up_entry(top_up=top_up)
    return {
        **wallet_out(billing_selectors.wallet_summary(user=user)),
        "top_up_id": top_up.pk,
        "ledger_entry_id": entry.pk if entry is not None else None,
        "amount": money(top_up.amount),
        "card_last4": top_up.card_last4,
    }


# --- kitchen --------------------------------------------------------------------------


@api.get(
    "/kitchen/{int:restaurant_id}/orders",
    **answers({200: list[KitchenTicketOut]}, {**AUTH_ERRORS, 404: "`not_found`: there is no such restaurant."}),
    tags=["kitchen"],
    summary="A kitchen's open tickets, oldest first",
    description="Staff of the restaurant only (403 otherwise). Open: paid, accepted, preparing, ready, "
    "out_for_delivery. Each order also carries the kitchen's own fields (stations, dishes crossed off, "
    "priority, what it can be moved to, a recall while one is possible).",
)
def kitchen_orders(request: HttpRequest, restaurant_id: int) -> list[dict[str, Any]]:
    _check_id(restaurant_id)
    restaurant = selectors.restaurant_get(restaurant_id=restaurant_id)
    if not selectors.is_restaurant_staff(user=request.auth, restaurant_id=restaurant.pk):  # type: ignore[attr-defined]
        raise PermissionDenied("Only staff of this restaurant can see its kitchen.")
    return [kitchen_ticket_out(order) for order in selectors.kitchen_open_orders(restaurant_id=restaurant.pk)]


@api.post(
    "/kitchen/orders/{int:order_id}/transition",
    **answers({200: KitchenTicketOut}, {
        **AUTH_ERRORS,
        **BODY_ERRORS,
        404: "`not_found`: there is no such order.",
        409: "`invalid_transition`: the order cannot move to that status now.",
        422: f"{INVALID_REQUEST} A `to` that is not an order status is one of these.",
    }),
    tags=["kitchen"],
    summary="Move an order on",
    description="Staff of the order's restaurant only (403 otherwise). Allowed: paid→accepted, paid→rejected, "
    "accepted→preparing, preparing→ready, ready→out_for_delivery, ready→delivered, "
    "out_for_delivery→delivered; any other change is 409 `invalid_transition`. A `to` that is not an "
    "order status at all is 422 `invalid_request`.",
)
def kitchen_transition(request: HttpRequest, order_id: int, payload: TransitionIn) -> dict[str, Any]:
    _check_id(order_id)
    order = services.order_transition_by_staff(
        order_id=order_id,
        user=request.auth,  # type: ignore[attr-defined]
        to=payload.to.value,
        reason=payload.reason,
    )
    return _ticket(order.pk)


@api.post(
    "/kitchen/orders/{int:order_id}/recall",
    **answers({200: KitchenTicketOut}, {
        **AUTH_ERRORS,
        404: "`not_found`: there is no such order.",
        409: "`invalid_transition`: there is no kitchen move to undo, or its time has passed.",
    }),
    tags=["kitchen"],
    summary="Undo the kitchen's last move of an order",
    description="Staff of the order's restaurant only. Takes the order back to the status its last kitchen move "
    "came from (preparing→accepted, ready→preparing, out_for_delivery→ready, delivered→ready or "
    "out_for_delivery), as a new version, within a few minutes of the move (the ticket's `recall.until`). "
    "Otherwise 409 `invalid_transition`.",
)
def kitchen_recall(request: HttpRequest, order_id: int) -> dict[str, Any]:
    _check_id(order_id)
    order = services.order_recall(order_id=order_id, user=request.auth)  # type: ignore[attr-defined]
    return _ticket(order.pk)


@api.post(
    "/kitchen/orders/{int:order_id}/priority",
    **answers({200: KitchenTicketOut}, {
        **AUTH_ERRORS,
        **BODY_ERRORS,
        404: "`not_found`: there is no such order.",
        409: "`invalid_transition`: the ticket is no longer open.",
    }),
    tags=["kitchen"],
    summary="Flag a ticket to go first, or take the flag off",
    description="Staff of the order's restaurant only; open tickets only (409 otherwise). Setting the flag it "
    "already has changes nothing.",
)
def kitchen_priority(request: HttpRequest, order_id: int, payload: PriorityIn) -> dict[str, Any]:
    _check_id(order_id)
    order = services.order_set_priority(order_id=order_id, user=request.auth,  # type: ignore[attr-defined]
                                        priority=payload.priority)
    return _ticket(order.pk)


@api.post(
    "/kitchen/orders/{int:order_id}/items/{int:menu_item_id}/done",
    **answers({200: KitchenTicketOut}, {
        **AUTH_ERRORS,
        **BODY_ERRORS,
        404: "`not_found`: there is no such order, or it has no such dish.",
        409: "`invalid_transition`: the order is not accepted or being prepared.",
    }),
    tags=["kitchen"],
    summary="Cross a dish off a ticket, or put it back",
    description="Staff of the order's restaurant only, while the order is accepted or being prepared (409 "
    "otherwise); 404 when the order has no such dish. Repeating it changes nothing.",
)
def kitchen_item_done(request: HttpRequest, order_id: int, menu_item_id: int, payload: ItemDoneIn) -> dict[str, Any]:
    _check_id(order_id)
    _check_id(menu_item_id)
    order = services.order_item_mark_done(order_id=order_id, menu_item_id=menu_item_id,
                                          user=request.auth, done=payload.done)  # type: ignore[attr-defined]
    return _ticket(order.pk)


def _ticket(order_id: int) -> dict[str, Any]:
    ticket = selectors.kitchen_tickets(order_ids={order_id}).first()
    if ticket is None:
        raise NotFound("There is no such order.")
    return kitchen_ticket_out(ticket)


def _check_id(value: int) -> None:
    # The path converter takes any run of digits; beyond BIGINT nothing can exist.
    if not 1 <= value <= MAX_ID:
        raise NotFound("Not found.")


# --- errors ---------------------------------------------------------------------------


def _error(
    api: NinjaAPI, request: HttpRequest, status: int, code: str, message: str, **extra: Any
) -> HttpResponse:
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
    if isinstance(exc, Throttled):
        return _error(api, request, 429, "rate_limited", exc.message)
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
    logger.exception("unhandled API error on %s %s", request.method, request.path)
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
