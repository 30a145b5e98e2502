"""Placing orders and moving them through their status machine."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from bus.correlation import Trace, current_trace, get_correlation_id, trace_of, traced
from bus.outbox import Pending, outbox_write, outbox_write_many
from ordering.events import ORDER_PLACED, ORDER_STATUS_CHANGED
from ordering.exceptions import (
    IdempotencyConflict,
    InvalidOptions,
    InvalidOrder,
    ItemUnavailable,
    NotFound,
    OrderingError,
    OutOfStock,
    PermissionDenied,
    RestaurantBusy,
    RestaurantClosed,
    TotalOutOfRange,
)
from ordering.hours import Reason, slot_problem
from ordering.models import MenuItem, OptionGroup, Order, OrderEvent, OrderLine, Restaurant, StaffMembership
from ordering.options import choose, clean_note
from ordering.selectors import dish_option_groups
from ordering.services.stock import stock_release, stock_reserve
from ordering.status import RELEASES_STOCK, Actor, OrderStatus, check_transition
from passline.db import insert_rows, one_or_none

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")


class ItemRequest(NamedTuple):
    """One dish as asked for: its options (ids) and a note to the kitchen."""

    menu_item_id: int
    quantity: int
    options: tuple[int, ...] = ()
    note: str = ""


# A line of the order: the dish, its options (sorted ids) and its note. Identical choices are one
# line (quantities added up); the same dish with other options or another note is another line.
LineKey = tuple[int, tuple[int, ...], str]


@dataclass(frozen=True)
class OrderRequest:
    """What a customer asks for. Prices are never part of it: the server looks them up.

    ``items`` are ``(menu_item_id, quantity)`` pairs or :class:`ItemRequest` with options and a note.
    """

    restaurant_id: int
    items: Sequence[ItemRequest | tuple[int, int]]
    delivery_address: str
    notes: str = ""
    # Delivery or pick-up (``Order.Fulfilment``), a tip, and a time to have it for (None: as
    # soon as possible).
    fulfilment: str = Order.Fulfilment.DELIVERY.value
    tip: Decimal = Decimal("0.00")
    scheduled_for: datetime.datetime | None = None
    # From the wallet or by card (``Order.PaymentMethod``).
    payment_method: str = Order.PaymentMethod.WALLET.value
    lines: dict[LineKey, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        merged: Counter[LineKey] = Counter()
        for entry in self.items:
            item = entry if isinstance(entry, ItemRequest) else ItemRequest(*entry)
            key = (item.menu_item_id, tuple(sorted(item.options)), " ".join((item.note or "").split()))
            merged[key] += item.quantity
        object.__setattr__(self, "lines", dict(sorted(merged.items())))

    @property
    def address(self) -> str:
        """The delivery address; none for pick-up."""
        return "" if self.fulfilment == Order.Fulfilment.PICKUP else self.delivery_address.strip()

    @property
    def dish_quantities(self) -> dict[int, int]:
        """How many of each dish, whatever its options: what the stock and the limits count."""
        quantities: Counter[int] = Counter()
        for (menu_item_id, _, _), quantity in self.lines.items():
            quantities[menu_item_id] += quantity
        return dict(sorted(quantities.items()))

    def fingerprint(self) -> str:
        """A digest of the request, to tell a retry from a different request under one key."""
        # A plain line is ``[id, quantity]`` as before options existed, so earlier keys still match.
        lines = [
            [pk, quantity] if not options and not note else [pk, quantity, list(options), note]
            for (pk, options, note), quantity in self.lines.items()
        ]
        request: list[Any] = [self.restaurant_id, lines, self.address, self.notes.strip()]
        # Fulfilment, tip and time only when asked for, so that keys of earlier orders still match.
        if self.fulfilment != Order.Fulfilment.DELIVERY or self.tip or self.scheduled_for:
            when = self.scheduled_for.astimezone(datetime.UTC).isoformat() if self.scheduled_for else None
            request.append([self.fulfilment, f"{self.tip:.2f}", when])
        # The payment method only when it is not the wallet, for the same reason.
        if self.payment_method != Order.PaymentMethod.WALLET:
            request.append(["payment_method", self.payment_method])
        canonical = json.dumps(request, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _validate(request: OrderRequest) -> None:
    if not request.items:
        raise InvalidOrder("The order has no items.", code="empty_order")
    if len(request.lines) > settings.ORDER_MAX_LINES:
        raise InvalidOrder(
            f"An order can hold at most {settings.ORDER_MAX_LINES} different dishes.", code="too_many_items"
        )
    limit = settings.ORDER_MAX_QUANTITY_PER_LINE
    for entry in request.items:
        quantity = entry[1]
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise InvalidOrder("Each quantity must be a whole number of at least 1.", code="invalid_quantity")
    for _, _, note in request.lines:
        clean_note(note)
    if any(quantity > limit for quantity in request.dish_quantities.values()):
        raise InvalidOrder(f"At most {limit} of one dish per order.", code="invalid_quantity")
    if request.fulfilment not in Order.Fulfilment.values:
        raise InvalidOrder("Choose delivery or pick-up.", code="invalid_fulfilment", fulfilment=str(request.fulfilment))
    if request.fulfilment == Order.Fulfilment.DELIVERY and not request.delivery_address.strip():
        raise InvalidOrder("A delivery address is required.", code="missing_address")
    if len(request.address) > 255:
        raise InvalidOrder("The delivery address is too long (255 characters at most).", code="invalid_address")
    _validate_tip(request.tip)
    if request.payment_method not in Order.PaymentMethod.values:
        raise InvalidOrder("Pay from the wallet or by card.", code="invalid_payment_method")
    if len(request.notes) > 500:
        raise InvalidOrder("Notes are too long (500 characters at most).", code="invalid_notes")


def _validate_tip(tip: Decimal) -> None:
    most = settings.ORDER_TIP_MAX
    if not isinstance(tip, Decimal) or not tip.is_finite() or tip < 0 or tip > most or tip != tip.quantize(CENT):
        symbol = settings.CURRENCY_SYMBOL
        raise InvalidOrder(
            f"A tip must be between {symbol}0.00 and {symbol}{most:,.2f}, in cents.",
            code="invalid_tip",
            max_tip=f"{most:.2f}",
        )


class DeliveryCharge(NamedTuple):
    """What handing an order over costs: the delivery fee, and whether the dishes come to less
    than a delivery's minimum."""

    fee: Decimal
    below_minimum: bool


def delivery_charge(*, restaurant: Restaurant, fulfilment: str | None, subtotal: Decimal) -> DeliveryCharge:
    """The delivery fee an order of dishes worth ``subtotal`` pays (the restaurant's, for a
    delivery only: pick-up is free) and whether it is below the restaurant's minimum order
    (which binds deliveries only). The one rule of placing an order and of the checkout page's
    summary; whether the restaurant offers that way at all is the caller's check."""
    if fulfilment != Order.Fulfilment.DELIVERY:
        return DeliveryCharge(fee=Decimal("0.00"), below_minimum=False)
    return DeliveryCharge(fee=restaurant.delivery_fee, below_minimum=subtotal < restaurant.minimum_order)


def _check_fulfilment(request: OrderRequest, restaurant: Restaurant, subtotal: Decimal) -> Decimal:
    """Refuse a way of handing over the restaurant does not offer, or a delivery below its
    minimum order; the delivery fee the order pays."""
    if request.fulfilment not in restaurant.fulfilments:
        offered = " or ".join(Order.Fulfilment(kind).label.lower() for kind in restaurant.fulfilments) or "nothing"
        raise InvalidOrder(
            f"{restaurant.name} does not offer {Order.Fulfilment(request.fulfilment).label.lower()}; it offers {offered}.",
            code="fulfilment_unavailable",
            offered=restaurant.fulfilments,
        )
    charge = delivery_charge(restaurant=restaurant, fulfilment=request.fulfilment, subtotal=subtotal)
    if charge.below_minimum:
        symbol = settings.CURRENCY_SYMBOL
        raise InvalidOrder(
            f"{restaurant.name} delivers orders of {symbol}{restaurant.minimum_order:,.2f} or more; "
            f"the dishes come to {symbol}{subtotal:,.2f}. Add {symbol}{restaurant.minimum_order - subtotal:,.2f} "
            "more, or pick it up.",
            code="below_minimum_order",
            minimum=f"{restaurant.minimum_order:.2f}",
            subtotal=f"{subtotal:.2f}",
        )
    return charge.fee


def _check_slot(when: datetime.datetime, restaurant: Restaurant) -> None:
    """An order ahead must be for a quarter hour at least the preparation time away, within
    ``ORDER_AHEAD_DAYS``, when the restaurant is open (``ordering.hours.slot_problem``)."""
    problem = slot_problem(
        when=when,
        now=timezone.now(),
        tz=timezone.get_default_timezone(),
        schedule=restaurant.schedule,
        lead=datetime.timedelta(minutes=restaurant.prep_time_minutes),
        ahead=datetime.timedelta(days=settings.ORDER_AHEAD_DAYS),
    )
    if problem:
        raise InvalidOrder(problem, code="invalid_slot")


def order_total_check(*, total: Decimal) -> None:
    """Refuse a total the wallet can never pay, so that it is not placed only to end ``payment_failed``."""
    # Billing moves more than nothing and at most MONEY_MAX_MOVEMENT at a time (a typo of three
    # zeros is refused there); an order outside that range could only fail its payment.
    most = settings.MONEY_MAX_MOVEMENT
    if not Decimal("0.00") < total <= most:
        symbol = settings.CURRENCY_SYMBOL
        raise TotalOutOfRange(
            f"An order's total must be more than {symbol}0.00 and at most {symbol}{most:,.2f}, "
            f"the most one payment can take; this one is {symbol}{total:,.2f}.",
            total=f"{total:.2f}",
            max_total=f"{most:.2f}",
        )


def _replay(*, customer: User, idempotency_key: str, fingerprint: str) -> Order | None:
    existing = one_or_none(Order.objects.filter(customer=customer, idempotency_key=idempotency_key))
    if existing is None:
        return None
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was already used for a different order.")
    return existing


def order_place(*, customer: User, request: OrderRequest, idempotency_key: str | None = None) -> tuple[Order, bool]:
    """Create an order in ``pending_payment``, its total computed from current prices and its
    stock reserved, in one transaction. Returns ``(order, created)``: a retry under the same
    idempotency key returns the first order with ``created`` False."""
    _validate(request)
    fingerprint = request.fingerprint()
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise InvalidOrder("The Idempotency-Key must be 1 to 255 characters.", code="invalid_idempotency_key")
    # A retry is found when the new order cannot be written, not looked up before every
    # order: the key's unique constraint refuses the second order (its transaction, stock
    # included, rolls back), and any other refusal is checked against the first order too, so
    # a retry gets the first answer even when the dishes have sold out or the kitchen closed
    # since. A first attempt, the common case, costs no lookup.
    try:
        return _create(
            customer=customer, request=request, idempotency_key=idempotency_key, fingerprint=fingerprint
        ), True
    except (IntegrityError, OrderingError):
        if idempotency_key is None:
            raise
        replay = _replay(customer=customer, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if replay is None:
            raise
        return replay, False


@transaction.atomic
def _create(*, customer: User, request: OrderRequest, idempotency_key: str | None, fingerprint: str) -> Order:
    # The dishes with their restaurant in one query (the restaurant alone only when none of
    # them is its), and whether each has options (so that the options are read only for those
    # that do); unordered: the menu's default ordering would join the categories to sort.
    items = (
        MenuItem.objects.order_by()
        .select_related("restaurant")
        .annotate(has_options=Exists(OptionGroup.objects.order_by().filter(menu_item=OuterRef("pk"))))
        .in_bulk(list(dishes := request.dish_quantities), field_name="pk")
    )
    restaurant = next(
        (item.restaurant for item in items.values() if item.restaurant_id == request.restaurant_id), None
    ) or one_or_none(Restaurant.objects.filter(pk=request.restaurant_id))
    if restaurant is None:
        raise InvalidOrder("There is no such restaurant.", code="unknown_restaurant")
    state = restaurant.availability  # the fields just read: no query
    if request.scheduled_for is not None and restaurant.is_open:
        # Ordered ahead: what counts is the hours at that time, not whether it is open or busy now
        # (only the staff's closed switch stops orders ahead too).
        _check_slot(request.scheduled_for, restaurant)
    elif not state.taking_orders:
        refusal = RestaurantBusy if state.reason is Reason.BUSY else RestaurantClosed
        raise refusal(
            f"{restaurant.name} {state.message}",
            reason=state.reason.value,
            next_open=state.next_open.isoformat() if state.next_open else None,
        )
    unknown = [pk for pk in dishes if pk not in items or items[pk].restaurant_id != restaurant.pk]
    if unknown:
        raise InvalidOrder(
            "Some dishes are not on this restaurant's menu.", code="unknown_menu_item", menu_item_ids=unknown
        )
    unavailable = [items[pk].name for pk in dishes if not items[pk].is_available]
    if unavailable:
        raise ItemUnavailable(f"Not available right now: {', '.join(unavailable)}.", items=unavailable)

    priced = _priced_lines(request, items, with_options={pk for pk, item in items.items() if item.has_options})
    subtotal = sum((line.unit_price * line.quantity for line in priced), Decimal("0.00"))
    delivery_fee = _check_fulfilment(request, restaurant, subtotal)
    total = subtotal + delivery_fee + request.tip
    order_total_check(total=total)

    day = timezone.localdate()
    # Reserve in id order: concurrent checkouts lock the same rows in the same order, so
    # they queue behind each other instead of deadlocking.
    for pk, quantity in dishes.items():
        # A dish without a daily limit (as this transaction read it) has nothing to reserve.
        if items[pk].daily_stock is not None and not stock_reserve(menu_item_id=pk, quantity=quantity, day=day):
            raise OutOfStock(f"Not enough {items[pk].name} left today.", items=[items[pk].name])

    order = Order(
        customer=customer,
        restaurant=restaurant,
        status=OrderStatus.PENDING_PAYMENT.value,
        version=1,
        total=total,
        currency=settings.CURRENCY,
        fulfilment=request.fulfilment,
        delivery_fee=delivery_fee,
        tip=request.tip,
        payment_method=request.payment_method,
        scheduled_for=request.scheduled_for,
        delivery_address=request.address,
        notes=request.notes.strip(),
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        stock_date=day,
    )
    # Written out, not compiled by the ORM: the three inserts were a fifth of the web's CPU
    # per order placed (passline.db.insert_rows).
    insert_rows([order])
    for line in priced:
        line.order = order
    insert_rows(lines := priced)
    event = OrderEvent(
        order=order,
        version=1,
        status=order.status,
        actor_kind=Actor.CUSTOMER.value,
        actor=customer,
        correlation_id=get_correlation_id() or "",
        at=order.created_at,
    )
    insert_rows([event])
    outbox_write(
        event=ORDER_PLACED,
        aggregate=f"order:{order.pk}",
        payload={
            "order_id": order.pk,
            "customer_id": customer.pk,
            "restaurant_id": restaurant.pk,
            "total": total,
            "currency": order.currency,
            "version": order.version,
            "placed_at": order.created_at,
            "fulfilment": order.fulfilment,
            "scheduled_for": order.scheduled_for,
            "payment_method": order.payment_method,
            "lines": [_placed_line(line) for line in lines],
        },
    )
    logger.info("order placed", extra={"order_id": order.pk, "restaurant_id": restaurant.pk, "total": str(total)})
    # The new order carries its lines and timeline as a selector's prefetch would, so the
    # answer to the request needs no second read of what was just written.
    _as_prefetched(order, "lines", lines)
    _as_prefetched(order, "events", [event])
    return order


def _priced_lines(request: OrderRequest, items: Mapping[int, MenuItem], *, with_options: set[int]) -> list[OrderLine]:
    """The request's lines at the server's prices, their options checked against each dish's
    groups (read only for ``with_options``, the dishes that have any: no query when none has)."""
    groups = dish_option_groups(menu_item_ids=sorted(with_options))
    lines = []
    for (pk, option_ids, note), quantity in request.lines.items():
        item = items[pk]
        snapshot, delta = choose(menu_item_id=pk, dish=item.name, groups=groups.get(pk, ()), option_ids=option_ids)
        unit_price = item.price + delta
        if unit_price < 0:
            raise InvalidOptions(
                f"{item.name} with these options would cost less than nothing.",
                menu_item_id=pk,
                reason="negative_price",
            )
        lines.append(
            OrderLine(
                menu_item_id=pk,
                name=item.name,
                unit_price=unit_price,
                vat_rate=item.vat_rate,  # the rate of the day, for the receipt
                quantity=quantity,
                options=snapshot,
                note=clean_note(note),
            )
        )
    return lines


def _placed_line(line: OrderLine) -> dict[str, Any]:
    placed: dict[str, Any] = {
        "menu_item_id": line.menu_item_id,
        "name": line.name,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
    }
    if line.options or line.note:
        placed["options"] = [{**chosen, "price_delta": Decimal(chosen["price_delta"])} for chosen in line.options]
        placed["note"] = line.note
    return placed


def _as_prefetched(order: Order, relation: str, objects: list[Any]) -> None:
    """Fill ``order.<relation>.all()`` with ``objects``, as ``prefetch_related`` leaves it (a
    queryset whose results are in): iterating reads nothing; any other query still runs."""
    queryset = getattr(order, relation).all()
    queryset._result_cache = list(objects)
    queryset._prefetch_done = True
    order.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = queryset


@transaction.atomic
def order_transition(
    *,
    order_id: int,
    to: OrderStatus | str,
    actor_kind: Actor,
    actor: User | None = None,
    reason: str = "",
) -> Order:
    """Move an order to ``to`` if the status machine allows it for ``actor_kind``.

    Locks the order row, so concurrent changes of one order apply one after the other and
    each sees the version the previous one wrote.
    """
    order = one_or_none(Order.objects.select_for_update().filter(pk=order_id))
    if order is None:
        raise NotFound("There is no such order.")
    check_transition(order.status, to, actor_kind)
    return order_move(order=order, to=OrderStatus(to), actor_kind=actor_kind, actor=actor, reason=reason)


def order_move(*, order: Order, to: OrderStatus, actor_kind: Actor, actor: User | None, reason: str) -> Order:
    """Write a status change the caller has checked, on an order it holds locked: the new
    version, its event row and its outbox event; stock goes back on the exits that release it."""
    return order_move_many(orders=[order], to=to, actor_kind=actor_kind, actor=actor, reason=reason)[0]


def order_move_many(
    *,
    orders: list[Order],
    to: OrderStatus,
    actor_kind: Actor,
    actor: User | None = None,
    reason: str = "",
    extra_events: list[Pending] | None = None,
) -> list[Order]:
    """:func:`order_move` for several orders the caller holds locked and has checked, all to
    the same status for the same reason: one UPDATE, one INSERT of their event rows, one of
    their outbox events (with the caller's ``extra_events`` in the same statement, after them).
    """
    if not orders:
        return []
    now = timezone.now()
    previous = {order.pk: order.status for order in orders}
    for order in orders:
        order.status, order.updated_at = to.value, now
        order.version += 1
        order.ticket_revision += 1
    # The rows are locked, so version + 1 in the database is the version computed above.
    Order.objects.filter(pk__in=list(previous)).update(
        status=to.value, version=F("version") + 1, ticket_revision=F("ticket_revision") + 1, updated_at=now
    )
    # In a batch each order's step and event name its own message's request and cause
    # (bus/correlation.py trace_of); alone, the work in hand's.
    traces = {order.pk: trace_of(order.pk) or current_trace() for order in orders}
    steps = OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order=order,
                version=order.version,
                status=order.status,
                from_status=previous[order.pk],
                actor_kind=actor_kind.value,
                actor=actor,
                reason=reason[:255],
                correlation_id=_correlation_of(traces[order.pk]),
                at=now,
            )
            for order in orders
        ]
    )
    outbox_write_many(
        [_status_changed(order, step, previous[order.pk], traces[order.pk]) for order, step in zip(orders, steps)]
        + (extra_events or [])
    )
    if to.value in RELEASES_STOCK:
        for order in orders:
            for line in order.lines.all():
                stock_release(menu_item_id=line.menu_item_id, quantity=line.quantity, day=order.stock_date)
    if logger.isEnabledFor(logging.INFO):
        for order in orders:
            with traced(traces[order.pk]):
                logger.info(
                    "order status changed",
                    extra={
                        "order_id": order.pk,
                        "from": previous[order.pk],
                        "to": order.status,
                        "version": order.version,
                    },
                )
    return orders


def _correlation_of(trace: Trace | None) -> str:
    return trace.correlation_id if trace is not None else ""


def _status_changed(order: Order, step: OrderEvent, from_status: str, trace: Trace | None) -> Pending:
    with traced(trace):
        return Pending(
            event=ORDER_STATUS_CHANGED,
            aggregate=f"order:{order.pk}",
            payload={
                "order_id": order.pk,
                "customer_id": order.customer_id,
                "restaurant_id": order.restaurant_id,
                "status": order.status,
                "from_status": from_status,
                "version": order.version,
                "at": step.at,
                "reason": step.reason,
            },
        )


def order_cancel(*, order_id: int, customer: User, reason: str = "Cancelled by the customer") -> Order:
    """The customer cancels their own order; another customer's order does not exist for them."""
    if not Order.objects.filter(pk=order_id, customer=customer).exists():
        raise NotFound("There is no such order.")
    return order_transition(
        order_id=order_id, to=OrderStatus.CANCELLED, actor_kind=Actor.CUSTOMER, actor=customer, reason=reason
    )


def order_transition_by_staff(*, order_id: int, user: User, to: str, reason: str = "") -> Order:
    """A kitchen moves one of its restaurant's orders on."""
    restaurant_id = one_or_none(Order.objects.filter(pk=order_id).values_list("restaurant_id", flat=True))
    if restaurant_id is None:
        raise NotFound("There is no such order.")
    if not StaffMembership.objects.filter(user=user, restaurant_id=restaurant_id).exists():
        raise PermissionDenied("Only staff of this order's restaurant can change it.")
    return order_transition(order_id=order_id, to=to, actor_kind=Actor.STAFF, actor=user, reason=reason)
