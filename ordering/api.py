"""Ordering's router of the JSON API: accounts and tokens, restaurants and menus, orders.

Views are thin: parse (ninja and ``api_schemas``), call one service or selector, serialize.
Failures leave in the error shape through the handlers of ``passline.api``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse
from ninja import Router, Status
from ninja.errors import HttpError

from ordering import selectors, services
from ordering.api_schemas import (
    MenuItemOut,
    OrderIn,
    OrderOut,
    RegisterIn,
    RegisterOut,
    RestaurantOut,
    TokenIn,
    TokenOut,
    check_id,
    menu_item_out,
    order_out,
    restaurant_out,
)
from passline.api_schemas import (
    AUTH_ERRORS,
    BODY_ERRORS,
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_422,
    INVALID_REQUEST,
    REPLAYED_HEADER,
    answers,
    idempotency_key,
)

router = Router()


# --- accounts -------------------------------------------------------------------------


class InvalidCredentials(HttpError):
    def __init__(self) -> None:
        super().__init__(401, "Wrong username or password.")


@router.post(
    "/auth/register",
    auth=None,
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
    "email (`invalid_email`) or a weak password (`weak_password`).",
)
def register(request: HttpRequest, payload: RegisterIn) -> Status[dict[str, Any]]:
    user = services.customer_register(username=payload.username, email=payload.email, password=payload.password)
    return Status(201, {"id": user.pk, "username": user.get_username()})


@router.post(
    "/auth/token",
    auth=None,
    **answers(
        {200: TokenOut},
        {
            **BODY_ERRORS,
            401: "`invalid_credentials`: wrong username or password, or an inactive account.",
        },
    ),
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
@router.get(
    "/restaurants", auth=None, **answers({200: list[RestaurantOut]}, {}), tags=["restaurants"], summary="Restaurants"
)
def restaurants(request: HttpRequest) -> list[dict[str, Any]]:
    return [restaurant_out(r) for r in selectors.restaurant_list()]


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


# --- orders ---------------------------------------------------------------------------


@router.post(
    "/orders",
    **answers(
        {201: OrderOut},
        {
            **AUTH_ERRORS,
            **BODY_ERRORS,
            409: "`idempotency_conflict`: the `Idempotency-Key` was used for a different order.",
            422: f"{INVALID_REQUEST} `unknown_restaurant`; `restaurant_closed`; `unknown_menu_item` (with "
            "`details.menu_item_ids`): a dish that does not exist or is another restaurant's; `item_unavailable`; "
            "`out_of_stock`; `invalid_quantity`; `missing_address`; `total_out_of_range`: a total of 0.00 or over "
            f"{settings.MONEY_MAX_MOVEMENT:,.2f}, which the wallet can never pay; {IDEMPOTENCY_KEY_422}",
        },
        parameters=[idempotency_key("order")],
    ),
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
