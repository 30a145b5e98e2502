"""Ordering's router of the JSON API: accounts and tokens, restaurants and menus, orders.

Views are thin: parse (ninja and ``api_schemas``), call one service or selector, serialize.
Failures leave in the error shape through the handlers of ``passline.api``.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router, Status
from ninja.errors import HttpError

from ordering import selectors, services
from ordering.api_auth import BearerAuth, bearer_token
from ordering.api_schemas import (
    MenuItemOut,
    OrderIn,
    OrderOut,
    RefreshIn,
    RegisterIn,
    RegisterOut,
    RestaurantOut,
    SlotsOut,
    TokenIn,
    TokenOut,
    check_id,
    menu_item_out,
    order_out,
    restaurant_out,
)
from ordering.search import MAX_QUERY
from ordering.services import accounts
from passline.api_schemas import (
    AUTH_ERRORS,
    BODY_ERRORS,
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_422,
    INVALID_REQUEST,
    RATE_LIMITED,
    REPLAYED_HEADER,
    answers,
    idempotency_key,
)
from passline.throttles import LOGIN, ORDERS, REGISTER

router = Router()


# --- accounts -------------------------------------------------------------------------


class InvalidCredentials(HttpError):
    def __init__(self) -> None:
        super().__init__(401, "Wrong username or password.")


class LockedOut(HttpError):
    """Too many failed sign-ins for this username from this address (django-axes)."""

    def __init__(self) -> None:
        super().__init__(429, "Too many failed sign-in attempts.")


@router.post(
    "/auth/register",
    auth=None,
    throttle=REGISTER,
    **answers(
        {201: RegisterOut},
        {
            **BODY_ERRORS,
            409: "`username_taken`: the username exists.",
            422: f"{INVALID_REQUEST} With `field`: `invalid_username` (empty, or with characters other "
            "than letters, digits and @ . + - _), `invalid_email`, `weak_password`.",
        },
    ),
    tags=["auth"],
    summary="Create a customer account",
    description="409 `username_taken` when the username exists; 422 with `field` for a bad username, "
    "email (`invalid_email`) or a weak password (`weak_password`). Accounts created from one address "
    "are limited (429 `rate_limited`).",
)
def register(request: HttpRequest, payload: RegisterIn) -> Status[dict[str, Any]]:
    user = services.customer_register(username=payload.username, email=payload.email, password=payload.password)
    return Status(201, {"id": user.pk, "username": user.get_username()})


def _pair_out(pair: accounts.TokenPair) -> dict[str, Any]:
    return {
        "token": pair.token,
        "token_type": "Bearer",
        "expires_at": pair.expires_at,
        "refresh_token": pair.refresh_token,
        "refresh_expires_at": pair.refresh_expires_at,
    }


@router.post(
    "/auth/token",
    auth=None,
    throttle=LOGIN,
    **answers(
        {200: TokenOut},
        {
            **BODY_ERRORS,
            401: "`invalid_credentials`: wrong username or password, or an inactive account.",
            429: f"`too_many_attempts`: this username is locked for this address after repeated wrong "
            f"passwords, until `Retry-After` seconds pass; {RATE_LIMITED}",
        },
    ),
    tags=["auth"],
    summary="Get a bearer token",
    description="A bearer token (valid until `expires_at`) and a single-use refresh token for "
    "`POST /auth/refresh`. 401 `invalid_credentials` for a wrong username or password or an inactive "
    "account; after repeated failures the username is locked for the caller's address: 429 "
    "`too_many_attempts` with `Retry-After`, even with the right password.",
)
def token(request: HttpRequest, payload: TokenIn) -> dict[str, Any]:
    # With the request, so that django-axes counts the attempt and refuses a locked-out one.
    user = authenticate(request, username=payload.username, password=payload.password)
    if getattr(request, "axes_locked_out", False):
        raise LockedOut()
    if user is None:
        raise InvalidCredentials()
    # A sign-in like the site's: last_login is recorded, and axes forgets this address's typos.
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    return _pair_out(accounts.api_token_pair_issue(user=user))


@router.post(
    "/auth/refresh",
    auth=None,
    **answers(
        {200: TokenOut},
        {
            **BODY_ERRORS,
            401: "`invalid_refresh_token`: unknown, expired, already used or revoked (sign in again).",
        },
    ),
    tags=["auth"],
    summary="Exchange a refresh token for a new pair",
    description="Each refresh token works once: the answer is a new token and a new refresh token, and "
    "the old pair stops working. Presenting a used refresh token again revokes every token of that "
    "sign-in (it may have been copied). 401 `invalid_refresh_token` otherwise.",
)
def refresh(request: HttpRequest, payload: RefreshIn) -> dict[str, Any]:
    return _pair_out(accounts.api_token_refresh(refresh_token=payload.refresh_token))


@router.post(
    "/auth/logout",
    auth=BearerAuth(),
    **answers({204: None}, {401: "`not_authenticated`: no valid bearer token (this route takes no session)."}),
    tags=["auth"],
    summary="Revoke this bearer token",
    description="The token in the `Authorization` header and its refresh token stop working at once.",
)
def logout(request: HttpRequest) -> Status[None]:
    accounts.api_token_revoke(token=bearer_token(request) or "")
    return Status(204, None)


# --- restaurants ----------------------------------------------------------------------


# Browsing is public, as on the site: a visitor sees restaurants and menus before signing in.
@router.get(
    "/restaurants",
    auth=None,
    **answers({200: list[RestaurantOut]}, {422: INVALID_REQUEST}),
    tags=["restaurants"],
    summary="Restaurants, or a search",
    description="Without parameters, every restaurant by name. `q`: the restaurants whose name, cuisine or "
    "description, or one of whose dishes, matches every word (each word as a prefix: `curr` finds curry; words "
    "under three letters are matched within names only when no longer word is given), best first, each with "
    "`matching_dishes`. `cuisine`: only restaurants of that cuisine (any case). 422 `invalid_request` for a `q` "
    "over 100 characters.",
)
def restaurants(
    request: HttpRequest,
    q: str = Query("", max_length=MAX_QUERY, description="Words to search for."),
    cuisine: str = Query("", max_length=60, description="A cuisine, e.g. `Italian`."),
) -> list[dict[str, Any]]:
    if not q.strip():
        return [restaurant_out(r) for r in selectors.restaurant_list(cuisine=cuisine.strip())]
    return [
        {**restaurant_out(match.restaurant), "matching_dishes": [{"id": d.pk, "name": d.name} for d in match.dishes]}
        for match in selectors.restaurant_search(text=q, cuisine=cuisine.strip())
    ]


@router.get(
    "/restaurants/{int:restaurant_id}/menu",
    auth=None,
    **answers({200: list[MenuItemOut]}, {404: "`not_found`: there is no such restaurant."}),
    tags=["restaurants"],
    summary="A restaurant's menu",
)
def menu(request: HttpRequest, restaurant_id: int) -> list[dict[str, Any]]:
    check_id(restaurant_id)
    restaurant = selectors.restaurant_get(restaurant_id=restaurant_id)
    return [menu_item_out(item) for item in selectors.menu_items(restaurant_id=restaurant.pk)]


@router.get(
    "/restaurants/{int:restaurant_id}/slots",
    auth=None,
    **answers(
        {200: SlotsOut},
        {404: "`not_found`: there is no such restaurant.", 422: INVALID_REQUEST},
    ),
    tags=["restaurants"],
    summary="Times to order ahead for",
    description="The quarter hours of `date` (the restaurant's local date, default today) an order may be placed "
    "for with `scheduled_for`: in its opening hours, at least its preparation time from now, within "
    "`ORDER_AHEAD_DAYS` (7). Empty when it is closed that day or by its staff.",
)
def slots(request: HttpRequest, restaurant_id: int, date: datetime.date | None = None) -> dict[str, Any]:
    check_id(restaurant_id)
    restaurant = selectors.restaurant_get(restaurant_id=restaurant_id)
    day = date or timezone.localdate()
    return {"date": day, "slots": selectors.order_ahead_slots(restaurant=restaurant, day=day)}


# --- orders ---------------------------------------------------------------------------


@router.post(
    "/orders",
    throttle=ORDERS,
    **answers(
        {201: OrderOut},
        {
            **AUTH_ERRORS,
            **BODY_ERRORS,
            409: "`idempotency_conflict`: the `Idempotency-Key` was used for a different order.",
            422: f"{INVALID_REQUEST} `unknown_restaurant`; `restaurant_closed`: closed by its staff, outside its "
            "opening hours or on a closed date; `restaurant_busy`: its staff paused new orders for a while (both "
            "with `details.reason` and `details.next_open`, an ISO time or null); `unknown_menu_item` (with "
            "`details.menu_item_ids`): a dish that does not exist or is another restaurant's; `item_unavailable`; "
            "`out_of_stock`; `invalid_options` (with `details.menu_item_id`, `details.reason` — `unknown_option`, "
            "`option_unavailable`, `duplicate_option`, `too_few_options` or `too_many_options` — and `details.group` or "
            "`details.option_ids`): options that are not the dish's, unavailable, or break a group's min/max, "
            "a required group left out included; `invalid_note`: a dish's note over 140 characters; "
            "`invalid_quantity`; `missing_address`; `total_out_of_range`: a total of 0.00 or over "
            f"{settings.MONEY_MAX_MOVEMENT:,.2f}, which the wallet can never pay; {IDEMPOTENCY_KEY_422}",
        },
        parameters=[idempotency_key("order")],
    ),
    tags=["orders"],
    summary="Place an order",
    description="Creates the order in `pending_payment`; the total is computed from the menu's prices. "
    "Send an `Idempotency-Key` header to retry safely: a retry with the same body answers 201 with the "
    "first order and `Idempotent-Replayed: true`; a different body under the same key is 409 "
    "`idempotency_conflict`. 422 codes: `invalid_request`, `unknown_restaurant`, `restaurant_closed`, `restaurant_busy`, "
    "`unknown_menu_item`, `item_unavailable`, `invalid_options`, `invalid_note`, `out_of_stock`, `invalid_quantity`, `total_out_of_range`, "
    "`invalid_idempotency_key`. A 503 `unavailable` changed nothing: retry with the same key.",
)
def order_create(request: HttpRequest, payload: OrderIn, response: HttpResponse) -> Status[dict[str, Any]]:
    customer = request.auth  # type: ignore[attr-defined]
    order, created = services.order_place(
        customer=customer,
        request=services.OrderRequest(
            restaurant_id=payload.restaurant_id,
            items=[
                services.ItemRequest(line.menu_item_id, line.quantity, tuple(line.options), line.note)
                for line in payload.items
            ],
            delivery_address=payload.delivery_address,
            notes=payload.notes or "",
            fulfilment=payload.fulfilment,
            tip=Decimal(payload.tip),
            payment_method=payload.payment_method,
            scheduled_for=payload.scheduled_for,
        ),
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    if not created:
        response[REPLAYED_HEADER] = "true"
        order = selectors.customer_order(customer=customer, order_id=order.pk)
    return Status(201, order_out(order))


@router.get(
    "/orders", **answers({200: list[OrderOut]}, AUTH_ERRORS), tags=["orders"], summary="My orders, newest first"
)
def order_list(request: HttpRequest) -> list[dict[str, Any]]:
    customer = request.auth  # type: ignore[attr-defined]
    return [order_out(order) for order in selectors.customer_orders(customer=customer)]


@router.get(
    "/orders/{int:order_id}",
    **answers({200: OrderOut}, {**AUTH_ERRORS, 404: "`not_found`: no such order of yours."}),
    tags=["orders"],
    summary="One of my orders",
    description="Another customer's order is a 404, exactly like an order that does not exist.",
)
def order_get(request: HttpRequest, order_id: int) -> dict[str, Any]:
    check_id(order_id)
    return order_out(selectors.customer_order(customer=request.auth, order_id=order_id))  # type: ignore[attr-defined]


@router.post(
    "/orders/{int:order_id}/cancel",
    **answers(
        {200: OrderOut},
        {
            **AUTH_ERRORS,
            404: "`not_found`: no such order of yours.",
            409: "`invalid_transition`: the kitchen has accepted the order, or it has ended.",
        },
    ),
    tags=["orders"],
    summary="Cancel one of my orders",
    description="Possible while `pending_payment` or `paid`; afterwards 409 `invalid_transition`. "
    "A paid order is refunded in full.",
)
def order_cancel(request: HttpRequest, order_id: int) -> dict[str, Any]:
    check_id(order_id)
    customer = request.auth  # type: ignore[attr-defined]
    services.order_cancel(order_id=order_id, customer=customer)
    return order_out(selectors.customer_order(customer=customer, order_id=order_id))
