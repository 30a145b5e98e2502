"""Request and response bodies of ordering's routers of the JSON API (accounts, restaurants and
menus, orders, the kitchen), and how models become them.

Input is strict: ids and quantities must be JSON integers (no ``"2"``, ``true`` or ``1.5``),
and unknown fields are ignored, so a client's ``price`` or ``total`` never reaches a service.
Money leaves as a decimal string with two places, never a float.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, StrictInt

from ordering.exceptions import NotFound
from ordering.models import MenuItem, Order, OrderLine, Restaurant
from ordering.options import ALLERGENS, DIETARY, NOTE_MAX_LENGTH
from ordering.services.kitchen import recall_of, recall_window
from ordering.status import Actor, OrderStatus, allowed_next
from ordering.vat import VatBreakdown, vat_breakdown
from passline.api_schemas import Money, money

# Ids are BIGINT columns: anything larger can only be unknown, so it is bad input.
MAX_ID = 2**63 - 1

Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


def check_id(value: int) -> None:
    """A path id: the path converter takes any run of digits; beyond BIGINT nothing can exist."""
    if not 1 <= value <= MAX_ID:
        raise NotFound("Not found.")


def _storable(value: str) -> str:
    """Refuse text MariaDB's utf8mb4 cannot store (lone surrogates) or that has no place in it (NUL)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode.") from None
    if "\x00" in value:
        raise ValueError("Text must not contain NUL characters.")
    return value


Text = Annotated[str, AfterValidator(_storable)]
Percent = Annotated[
    str, Field(pattern=r"^\d{1,2}\.\d{2}$", examples=["7.00"], description="A VAT rate in percent, two places.")
]


# --- accounts -------------------------------------------------------------------------


class RegisterIn(Schema):
    username: Annotated[Text, Field(max_length=150)]
    email: Annotated[Text, Field(max_length=254)]
    password: Annotated[Text, Field(max_length=1024)]


class RegisterOut(Schema):
    id: int
    username: str


class TokenIn(Schema):
    username: Annotated[Text, Field(max_length=150)]
    password: Annotated[Text, Field(max_length=1024)]


class TokenOut(Schema):
    token: str = Field(description="Send as `Authorization: Bearer <token>`. Shown once.")
    token_type: str = Field("Bearer", description="Always `Bearer`.")
    expires_at: datetime.datetime = Field(description="When the token stops working (ISO 8601).")
    refresh_token: str = Field(description="For `POST /auth/refresh`, once. Shown once.")
    refresh_expires_at: datetime.datetime = Field(description="When the refresh token stops working.")


class RefreshIn(Schema):
    refresh_token: Annotated[Text, Field(max_length=200)]


# --- restaurants and menus ------------------------------------------------------------


class SlotsOut(Schema):
    date: datetime.date
    slots: list[datetime.datetime] = Field(description="Times an order may be placed for, on the quarter hour.")


class DishRef(Schema):
    id: int
    name: str


class RestaurantOut(Schema):
    id: int
    name: str
    is_open: bool
    slug: str
    cuisine: str
    description: str
    address: str
    prep_time_minutes: int
    taking_orders: bool = Field(description="Takes orders now: open, within its opening hours and not busy.")
    state: str = Field(
        description="Why (not): `open`, `closed` (by its staff), `outside_hours`, `exception_day` (a closed date "
        "or outside its special hours) or `busy` (new orders paused for a while)."
    )
    next_open: datetime.datetime | None = Field(
        description="When it takes orders again, where known (the end of a busy spell, the next opening)."
    )
    photo: dict[str, str] | None = Field(
        description="The restaurant's photo by size (`w480`, `w960`: 16:9; `s160`, `s320`: square; `full`), "
        "JPEG addresses that never change (cached for a year); null without one."
    )
    offers_delivery: bool
    offers_pickup: bool
    delivery_fee: Money
    minimum_order: Money = Field(description="The least a delivery order's dishes must come to (pick-up: none).")
    matching_dishes: list[DishRef] | None = Field(
        None, description="With `q`: its dishes that match, best first (at most five); null without `q`."
    )


class OptionOut(Schema):
    id: int
    name: str
    price_delta: Money = Field(description="Added to the dish's price when chosen (may be negative).")
    available: bool


class OptionGroupOut(Schema):
    id: int
    name: str
    min_choices: int = Field(description="0: optional; 1 or more: the order must choose at least this many.")
    max_choices: int
    options: list[OptionOut]


class MenuItemOut(Schema):
    id: int
    name: str
    price: Money
    available: bool = Field(description="Can be ordered now: on the menu and not sold out today.")
    description: str
    category: str
    remaining_today: int | None = Field(description="Left of today's stock; null when there is no limit.")
    allergens: list[str] = Field(
        description="Which of the EU's 14 allergens it contains: " + ", ".join(f"`{c}`" for c, _ in ALLERGENS) + "."
    )
    dietary: list[str] = Field(description="Dietary tags: " + ", ".join(f"`{c}`" for c, _ in DIETARY) + ".")
    option_groups: list[OptionGroupOut] = Field(description="Choices the dish asks for, in menu order.")
    photo: dict[str, str] | None = Field(description="The dish's photo by size, as a restaurant's; null without one.")


def restaurant_out(restaurant: Restaurant) -> dict[str, Any]:
    state = restaurant.availability
    return {
        "id": restaurant.pk,
        "name": restaurant.name,
        "is_open": restaurant.is_open,
        "slug": restaurant.slug,
        "cuisine": restaurant.cuisine,
        "description": restaurant.description,
        "address": restaurant.address,
        "prep_time_minutes": restaurant.prep_time_minutes,
        "photo": restaurant.photo_urls or None,
        "offers_delivery": restaurant.offers_delivery,
        "offers_pickup": restaurant.offers_pickup,
        "delivery_fee": money(restaurant.delivery_fee),
        "minimum_order": money(restaurant.minimum_order),
        "taking_orders": state.taking_orders,
        "state": state.reason.value,
        "next_open": state.next_open,
    }


def menu_item_out(item: MenuItem) -> dict[str, Any]:
    remaining = item.remaining_today
    return {
        "id": item.pk,
        "photo": item.photo_urls or None,
        "name": item.name,
        "price": money(item.price),
        "available": item.orderable,
        "description": item.description,
        "category": item.category.name,
        "remaining_today": max(remaining, 0) if remaining is not None else None,
        "allergens": [code for code, _ in item.allergen_labels],
        "dietary": [code for code, _ in item.dietary_labels],
        "option_groups": [
            {
                "id": group.pk,
                "name": group.name,
                "min_choices": group.min_choices,
                "max_choices": group.max_choices,
                "options": [
                    {"id": o.pk, "name": o.name, "price_delta": money(o.price_delta), "available": o.is_available}
                    for o in group.options.all()
                ],
            }
            for group in item.option_groups.all()
        ],
    }


# --- orders ---------------------------------------------------------------------------


class OrderLineIn(Schema):
    menu_item_id: Id
    quantity: Annotated[StrictInt, Field(ge=1, le=settings.ORDER_MAX_QUANTITY_PER_LINE)]
    options: list[Id] = Field(
        default_factory=list, max_length=50, description="Ids of the dish's options (`option_groups[].options[].id`)."
    )
    # Longer than NOTE_MAX_LENGTH is the domain's `invalid_note`; the schema only caps the body.
    note: Annotated[Text, Field(max_length=2000)] = Field(
        "", description=f'To the kitchen about this dish ("no onions"), up to {NOTE_MAX_LENGTH} characters.'
    )


class OrderIn(Schema):
    model_config = ConfigDict(extra="ignore")

    restaurant_id: Id
    items: list[OrderLineIn] = Field(min_length=1, max_length=settings.ORDER_MAX_LINES)
    fulfilment: Literal["delivery", "pickup"] = Field(
        "delivery", description="Delivered to `delivery_address`, or picked up at the restaurant."
    )
    delivery_address: Annotated[Text, Field(max_length=255)] = Field(
        "", description="Required for delivery (`missing_address` when blank); ignored for pick-up."
    )
    notes: Annotated[Text, Field(max_length=500)] | None = None
    tip: Money = Field("0.00", description="For the staff, added to the total; at most `ORDER_TIP_MAX` (100.00).")
    payment_method: Literal["wallet", "card"] = Field(
        "wallet",
        description="`wallet`: charged to the wallet once placed. `card`: confirmed by the customer on the payment "
        "provider's page, `POST /orders/{id}/card-payment` gives its `confirmation_url`.",
    )
    scheduled_for: datetime.datetime | None = Field(
        None,
        description="Order ahead for this time (with its offset): a quarter hour, at least the restaurant's "
        "preparation time from now, within 7 days, in its opening hours (`invalid_slot`); see "
        "`GET /restaurants/{id}/slots`. Null: as soon as possible.",
    )


class LineOptionOut(Schema):
    option_id: int
    group: str
    name: str
    price_delta: Money = Field(description="What it added to the price when the order was placed.")


class OrderLineOut(Schema):
    menu_item_id: int
    name: str
    quantity: int
    unit_price: Money
    line_total: Money
    vat_rate: Percent = Field(description="The dish's VAT rate when the order was placed; included in the price.")
    options: list[LineOptionOut] = Field(description="The options chosen; `unit_price` includes them.")
    note: str = Field(description="The customer's note to the kitchen about this dish.")


class VatRateOut(Schema):
    rate: Percent
    net: Money
    vat: Money
    gross: Money = Field(description="The lines at this rate, VAT included.")


class VatOut(Schema):
    rates: list[VatRateOut] = Field(description="One entry per VAT rate of the order, lowest rate first.")
    net: Money
    vat: Money
    gross: Money = Field(description="The order's total.")


class TimelineStepOut(Schema):
    status: OrderStatus
    version: int
    at: datetime.datetime
    reason: str


class OrderOut(Schema):
    id: int
    restaurant_id: int
    restaurant_name: str
    status: OrderStatus
    version: int = Field(description="Rises by one at every status change.")
    total: Money = Field(description="`subtotal` + `delivery_fee` + `tip`.")
    subtotal: Money = Field(description="The dishes.")
    delivery_fee: Money
    tip: Money
    currency: str
    fulfilment: Literal["delivery", "pickup"]
    payment_method: Literal["wallet", "card"]
    scheduled_for: datetime.datetime | None = Field(
        description="Ordered ahead for this time; null: as soon as possible."
    )
    delivery_address: str = Field(description="Empty for pick-up.")
    notes: str
    items: list[OrderLineOut]
    vat: VatOut = Field(
        description="Prices include VAT: the VAT in the dishes and the delivery fee by rate, each figure rounded "
        "half up to the cent per rate; net + vat = gross per rate and in total, and gross is the total less the "
        "tip (a tip is outside VAT)."
    )
    created_at: datetime.datetime
    timeline: list[TimelineStepOut] = Field(description="Every status the order went through, oldest first.")


def _line_out(line: OrderLine) -> dict[str, Any]:
    return {
        "menu_item_id": line.menu_item_id,
        "name": line.name,
        "quantity": line.quantity,
        "unit_price": money(line.unit_price),
        "line_total": money(line.line_total),
        "vat_rate": money(line.vat_rate),
        "options": [
            {
                "option_id": chosen["option_id"],
                "group": chosen["group"],
                "name": chosen["name"],
                "price_delta": money(Decimal(chosen["price_delta"])),
            }
            for chosen in line.options
        ],
        "note": line.note,
    }


def vat_out(breakdown: VatBreakdown) -> dict[str, Any]:
    return {
        "rates": [
            {"rate": money(r.rate), "net": money(r.net), "vat": money(r.vat), "gross": money(r.gross)}
            for r in breakdown.rates
        ],
        "net": money(breakdown.net),
        "vat": money(breakdown.vat),
        "gross": money(breakdown.gross),
    }


def order_out(order: Order) -> dict[str, Any]:
    """Expects an order from ``ordering.selectors`` (restaurant, lines and events prefetched)."""
    return {
        "id": order.pk,
        "restaurant_id": order.restaurant_id,
        "restaurant_name": order.restaurant.name,
        "status": order.status,
        "version": order.version,
        "total": money(order.total),
        "subtotal": money(order.subtotal),
        "delivery_fee": money(order.delivery_fee),
        "tip": money(order.tip),
        "currency": order.currency,
        "fulfilment": order.fulfilment,
        "payment_method": order.payment_method,
        "scheduled_for": order.scheduled_for,
        "delivery_address": order.delivery_address,
        "notes": order.notes,
        "items": [_line_out(line) for line in order.lines.all()],
        "vat": vat_out(vat_breakdown(order.taxables(order.lines.all()))),
        "created_at": order.created_at,
        "timeline": [
            {"status": event.status, "version": event.version, "at": event.at, "reason": event.reason}
            for event in order.events.all()
        ],
    }


# --- kitchen --------------------------------------------------------------------------


class TransitionIn(Schema):
    to: OrderStatus = Field(description="The status to move the order to; a value outside the list is a 422.")
    reason: Annotated[Text, Field(max_length=255)] = ""


class PriorityIn(Schema):
    priority: bool = Field(description="True flags the ticket to go first.")


class ItemDoneIn(Schema):
    done: bool = Field(True, description="True crosses the dish off; false puts it back.")


class KitchenLineOut(OrderLineOut):
    line_id: int = Field(description="This line, for `POST /kitchen/orders/{id}/lines/{line_id}/done`.")
    category: str
    station: str = Field(description="The kitchen station that makes this dish.")
    done: bool = Field(description="Crossed off by the kitchen.")


class RecallOut(Schema):
    to: OrderStatus = Field(description="The status a recall goes back to.")
    until: datetime.datetime = Field(description="After this the move can no longer be recalled.")


class KitchenTicketOut(OrderOut):
    """An order as the kitchen screen shows it: the contract's order and the kitchen's own fields."""

    items: list[KitchenLineOut]  # type: ignore[assignment]
    revision: int = Field(description="Rises at every change a kitchen screen shows; apply only newer ones.")
    priority: bool
    paid_at: datetime.datetime | None
    target_minutes: int = Field(description="The restaurant's target from payment to ready.")
    next: list[OrderStatus] = Field(description="The statuses the kitchen can move it to now.")
    recall: RecallOut | None = Field(description="The kitchen's last move, while it can still be undone.")


def kitchen_ticket_out(order: Order, *, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Expects an order from ``selectors.kitchen_*`` (lines with their category, events prefetched)."""
    events = list(order.events.all())
    last = events[-1] if events else None
    target = recall_of(last, now=now)
    return {
        **order_out(order),
        "items": [
            {
                **_line_out(line),
                "line_id": line.pk,
                "category": line.menu_item.category.name,
                "station": line.menu_item.category.station,
                "done": line.done_at is not None,
            }
            for line in order.lines.all()
        ],
        "revision": order.ticket_revision,
        "priority": order.priority,
        "paid_at": next((e.at for e in events if e.status == OrderStatus.PAID), None),
        "target_minutes": order.restaurant.prep_time_minutes,
        "next": [s.value for s in allowed_next(order.status, Actor.STAFF)],
        "recall": {"to": target.value, "until": last.at + recall_window()} if target and last else None,
    }
