"""The kitchen's router of the JSON API: a restaurant's open tickets, and moving them on.

Staff of the restaurant only. Thin views: parse (ninja and ``ordering.api_schemas``), call one
service or selector, answer with the ticket as the kitchen screen shows it.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from ordering import selectors, services
from ordering.api_schemas import ItemDoneIn, KitchenTicketOut, PriorityIn, TransitionIn, check_id, kitchen_ticket_out
from ordering.exceptions import NotFound, PermissionDenied
from passline.api_schemas import AUTH_ERRORS, BODY_ERRORS, INVALID_REQUEST, answers

router = Router()


@router.get(
    "/kitchen/{int:restaurant_id}/orders",
    **answers({200: list[KitchenTicketOut]}, {**AUTH_ERRORS, 404: "`not_found`: there is no such restaurant."}),
    tags=["kitchen"],
    summary="A kitchen's open tickets, oldest first",
    description="Staff of the restaurant only (403 otherwise). Open: paid, accepted, preparing, ready, "
    "out_for_delivery. Each order also carries the kitchen's own fields (stations, dishes crossed off, "
    "priority, what it can be moved to, a recall while one is possible).",
)
def kitchen_orders(request: HttpRequest, restaurant_id: int) -> list[dict[str, Any]]:
    check_id(restaurant_id)
    restaurant = selectors.restaurant_get(restaurant_id=restaurant_id)
    user = request.auth  # type: ignore[attr-defined]
    if not selectors.is_restaurant_staff(user=user, restaurant_id=restaurant.pk):
        raise PermissionDenied("Only staff of this restaurant can see its kitchen.")
    return [kitchen_ticket_out(order) for order in selectors.kitchen_open_orders(restaurant_id=restaurant.pk)]


@router.post(
    "/kitchen/orders/{int:order_id}/transition",
    **answers(
        {200: KitchenTicketOut},
        {
            **AUTH_ERRORS,
            **BODY_ERRORS,
            404: "`not_found`: there is no such order.",
            409: "`invalid_transition`: the order cannot move to that status now.",
            422: f"{INVALID_REQUEST} A `to` that is not an order status is one of these.",
        },
    ),
    tags=["kitchen"],
    summary="Move an order on",
    description="Staff of the order's restaurant only (403 otherwise). Allowed: paid→accepted, paid→rejected, "
    "accepted→preparing, preparing→ready, ready→out_for_delivery, ready→delivered, "
    "out_for_delivery→delivered; any other change is 409 `invalid_transition`. A `to` that is not an "
    "order status at all is 422 `invalid_request`.",
)
def kitchen_transition(request: HttpRequest, order_id: int, payload: TransitionIn) -> dict[str, Any]:
    check_id(order_id)
    order = services.order_transition_by_staff(
        order_id=order_id,
        user=request.auth,  # type: ignore[attr-defined]
        to=payload.to.value,
        reason=payload.reason,
    )
    return _ticket(order.pk)


@router.post(
    "/kitchen/orders/{int:order_id}/recall",
    **answers(
        {200: KitchenTicketOut},
        {
            **AUTH_ERRORS,
            404: "`not_found`: there is no such order.",
            409: "`invalid_transition`: there is no kitchen move to undo, or its time has passed.",
        },
    ),
    tags=["kitchen"],
    summary="Undo the kitchen's last move of an order",
    description="Staff of the order's restaurant only. Takes the order back to the status its last kitchen move "
    "came from (preparing→accepted, ready→preparing, out_for_delivery→ready, delivered→ready or "
    "out_for_delivery), as a new version, within a few minutes of the move (the ticket's `recall.until`). "
    "Otherwise 409 `invalid_transition`.",
)
def kitchen_recall(request: HttpRequest, order_id: int) -> dict[str, Any]:
    check_id(order_id)
    order = services.order_recall(order_id=order_id, user=request.auth)  # type: ignore[attr-defined]
    return _ticket(order.pk)


@router.post(
    "/kitchen/orders/{int:order_id}/priority",
    **answers(
        {200: KitchenTicketOut},
        {
            **AUTH_ERRORS,
            **BODY_ERRORS,
            404: "`not_found`: there is no such order.",
            409: "`invalid_transition`: the ticket is no longer open.",
        },
    ),
    tags=["kitchen"],
    summary="Flag a ticket to go first, or take the flag off",
    description="Staff of the order's restaurant only; open tickets only (409 otherwise). Setting the flag it "
    "already has changes nothing.",
)
def kitchen_priority(request: HttpRequest, order_id: int, payload: PriorityIn) -> dict[str, Any]:
    check_id(order_id)
    order = services.order_set_priority(
        order_id=order_id,
        user=request.auth,  # type: ignore[attr-defined]
        priority=payload.priority,
    )
    return _ticket(order.pk)


@router.post(
    "/kitchen/orders/{int:order_id}/items/{int:menu_item_id}/done",
    **answers(
        {200: KitchenTicketOut},
        {
            **AUTH_ERRORS,
            **BODY_ERRORS,
            404: "`not_found`: there is no such order, or it has no such dish.",
            409: "`invalid_transition`: the order is not accepted or being prepared.",
        },
    ),
    tags=["kitchen"],
    summary="Cross a dish off a ticket, or put it back",
    description="Staff of the order's restaurant only, while the order is accepted or being prepared (409 "
    "otherwise); 404 when the order has no such dish. Every line of that dish (the same dish with other options "
    "or notes is several lines) is crossed off or put back. Repeating it changes nothing.",
)
def kitchen_item_done(request: HttpRequest, order_id: int, menu_item_id: int, payload: ItemDoneIn) -> dict[str, Any]:
    check_id(order_id)
    check_id(menu_item_id)
    order = services.order_item_mark_done(
        order_id=order_id,
        menu_item_id=menu_item_id,
        user=request.auth,  # type: ignore[attr-defined]
        done=payload.done,
    )
    return _ticket(order.pk)


@router.post(
    "/kitchen/orders/{int:order_id}/lines/{int:line_id}/done",
    **answers(
        {200: KitchenTicketOut},
        {
            **AUTH_ERRORS,
            **BODY_ERRORS,
            404: "`not_found`: there is no such order, or it has no such line.",
            409: "`invalid_transition`: the order is not accepted or being prepared.",
        },
    ),
    tags=["kitchen"],
    summary="Cross one line of a ticket off, or put it back",
    description="As `…/items/{menu_item_id}/done`, for one line (`items[].line_id`): the same dish with other "
    "options or another note is another line, crossed off on its own.",
)
def kitchen_line_done(request: HttpRequest, order_id: int, line_id: int, payload: ItemDoneIn) -> dict[str, Any]:
    check_id(order_id)
    check_id(line_id)
    order = services.order_item_mark_done(
        order_id=order_id,
        line_id=line_id,
        user=request.auth,  # type: ignore[attr-defined]
        done=payload.done,
    )
    return _ticket(order.pk)


def _ticket(order_id: int) -> dict[str, Any]:
    ticket = selectors.kitchen_tickets(order_ids={order_id}).first()
    if ticket is None:
        raise NotFound("There is no such order.")
    return kitchen_ticket_out(ticket)
