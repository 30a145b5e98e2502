"""What one event says about an order, and how it is folded into the order's fact row.

Pure: no database. ``apply`` is idempotent (applying an observation twice changes nothing)
and order-independent (any order of an order's observations gives the same row): every
column is either set once from a value that cannot change (when the order was placed, paid,
ended; the amounts) — keeping the earliest if two ever disagreed — or taken from the step
with the highest version. So a status change that overtakes its order's ``order.placed``
(they come by different exchanges), a redelivery, or a second consumer copy racing the first
cannot make a figure wrong.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from ordering.status import OrderStatus

PLACED = "placed"
STATUS = "status"
PAYMENT_SUCCEEDED = "payment_succeeded"
PAYMENT_FAILED = "payment_failed"
PAYMENT_REFUNDED = "payment_refunded"

# The statuses that end an order before it is served.
EXITS = frozenset({OrderStatus.PAYMENT_FAILED.value, OrderStatus.REJECTED.value, OrderStatus.CANCELLED.value})


@dataclass(frozen=True)
class Dish:
    menu_item_id: int
    name: str
    quantity: int
    unit_price: Decimal


def dishes_by_item(dishes: Iterable[Dish]) -> tuple[Dish, ...]:
    """One dish per menu item: an order holds a dish on several lines when their options or notes
    differ, and analytics keeps one line per (order, dish). The quantities add up; the unit price
    is their average, to the cent (what the options made each line cost), so takings stay within
    a cent of the lines'."""
    merged: dict[int, list[Dish]] = {}
    for dish in dishes:
        merged.setdefault(dish.menu_item_id, []).append(dish)
    out = []
    for menu_item_id, same in merged.items():
        quantity = sum(d.quantity for d in same)
        amount = sum((d.unit_price * d.quantity for d in same), Decimal("0"))
        price = (amount / quantity).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if quantity else Decimal("0.00")
        out.append(Dish(menu_item_id=menu_item_id, name=same[0].name, quantity=quantity, unit_price=price))
    return tuple(out)


@dataclass(frozen=True)
class Observation:
    """One event, reduced to what analytics keeps of it."""

    kind: str
    order_id: int
    restaurant_id: int | None = None
    at: datetime.datetime | None = None
    status: str = ""
    from_status: str = ""
    version: int = 0
    amount: Decimal | None = None
    dishes: tuple[Dish, ...] = field(default=())


class Fact(Protocol):
    """The columns of ``analytics.models.OrderFact`` that ``apply`` writes."""

    restaurant_id: int | None
    placed_at: datetime.datetime | None
    total: Decimal | None
    paid_at: datetime.datetime | None
    paid_amount: Decimal | None
    ready_at: datetime.datetime | None
    ready_version: int
    unready_version: int
    exit_status: str
    exit_at: datetime.datetime | None
    refunded_amount: Decimal | None
    failed_amount: Decimal | None
    status: str
    version: int


def _earliest(current: Any, new: Any) -> Any:
    if new is None:
        return current
    if current is None:
        return new
    return min(current, new)


def apply(fact: Fact, observation: Observation) -> None:
    """Fold one observation into the order's fact row."""
    o = observation
    if fact.restaurant_id is None:
        fact.restaurant_id = o.restaurant_id
    if o.kind == PLACED:
        if o.version > fact.version:  # placed is the order's first version, pending payment
            fact.status, fact.version = OrderStatus.PENDING_PAYMENT.value, o.version
        fact.placed_at = _earliest(fact.placed_at, o.at)
        fact.total = _earliest(fact.total, o.amount)
    elif o.kind == PAYMENT_SUCCEEDED:
        fact.paid_amount = _earliest(fact.paid_amount, o.amount)
    elif o.kind == PAYMENT_FAILED:
        fact.failed_amount = _earliest(fact.failed_amount, o.amount)
    elif o.kind == PAYMENT_REFUNDED:
        fact.refunded_amount = _earliest(fact.refunded_amount, o.amount)
    elif o.kind == STATUS:
        _apply_status(fact, o)
    else:
        raise ValueError(f"unknown observation kind {o.kind!r}")


def _apply_status(fact: Fact, o: Observation) -> None:
    if o.version > fact.version:
        fact.status, fact.version = o.status, o.version
    if o.status == OrderStatus.PAID:
        fact.paid_at = _earliest(fact.paid_at, o.at)
    elif o.status == OrderStatus.READY and o.from_status == OrderStatus.PREPARING:
        # Only the kitchen's "ready" counts: a recall back to ready from out_for_delivery or
        # delivered is not the time the food was ready.
        if o.version > fact.ready_version:
            fact.ready_at, fact.ready_version = o.at, o.version
    elif o.status == OrderStatus.PREPARING and o.from_status == OrderStatus.READY:
        # A recall of "ready" (a mistaken tap): not ready until the kitchen says so again.
        fact.unready_version = max(fact.unready_version, o.version)
    elif o.status in EXITS:
        # An order ends at most once; the earliest wins if two copies ever disagreed.
        if not fact.exit_status or (fact.exit_at is not None and o.at is not None and o.at < fact.exit_at):
            fact.exit_status, fact.exit_at = o.status, o.at
