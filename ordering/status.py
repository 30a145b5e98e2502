"""The order's status machine: the one place that says which change is allowed, and to whom.

Pure data and functions, no database: services call :func:`check_transition` under the
order's row lock, interfaces may call :func:`allowed_next` to offer buttons.
"""

from __future__ import annotations

from enum import StrEnum

from ordering.exceptions import InvalidTransition


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PREPARING = "preparing"
    READY = "ready"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


class Actor(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    SYSTEM = "system"


STATUS_LABELS: dict[OrderStatus, str] = {
    OrderStatus.PENDING_PAYMENT: "Awaiting payment",
    OrderStatus.PAID: "Paid, waiting for the kitchen",
    OrderStatus.PAYMENT_FAILED: "Payment failed",
    OrderStatus.ACCEPTED: "Accepted by the kitchen",
    OrderStatus.REJECTED: "Rejected",
    OrderStatus.PREPARING: "Being prepared",
    OrderStatus.READY: "Ready",
    OrderStatus.OUT_FOR_DELIVERY: "Out for delivery",
    OrderStatus.DELIVERED: "Delivered",
    OrderStatus.CANCELLED: "Cancelled",
}

S = OrderStatus
# (from, to) -> who may make that change. docs/contract.md, "Order statuses".
TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], frozenset[Actor]] = {
    (S.PENDING_PAYMENT, S.PAID): frozenset({Actor.SYSTEM}),
    (S.PENDING_PAYMENT, S.PAYMENT_FAILED): frozenset({Actor.SYSTEM}),
    (S.PENDING_PAYMENT, S.CANCELLED): frozenset({Actor.CUSTOMER}),
    (S.PAID, S.ACCEPTED): frozenset({Actor.STAFF}),
    (S.PAID, S.REJECTED): frozenset({Actor.STAFF, Actor.SYSTEM}),
    (S.PAID, S.CANCELLED): frozenset({Actor.CUSTOMER}),
    (S.ACCEPTED, S.PREPARING): frozenset({Actor.STAFF}),
    (S.PREPARING, S.READY): frozenset({Actor.STAFF}),
    (S.READY, S.OUT_FOR_DELIVERY): frozenset({Actor.STAFF}),
    (S.READY, S.DELIVERED): frozenset({Actor.STAFF}),  # pick-up at the counter
    (S.OUT_FOR_DELIVERY, S.DELIVERED): frozenset({Actor.STAFF}),
}

TERMINAL: frozenset[OrderStatus] = frozenset({S.PAYMENT_FAILED, S.REJECTED, S.DELIVERED, S.CANCELLED})
# Tickets the kitchen still has to act on.
KITCHEN_OPEN: frozenset[OrderStatus] = frozenset({S.PAID, S.ACCEPTED, S.PREPARING, S.READY, S.OUT_FOR_DELIVERY})
# Exits after which the order's reserved stock goes back on the shelf.
RELEASES_STOCK: frozenset[OrderStatus] = frozenset({S.PAYMENT_FAILED, S.REJECTED, S.CANCELLED})


# Kitchen moves that a "recall" may undo, to the status they came from: a tap by mistake on
# the kitchen screen. Accepting is not among them: by then the acceptance deadline is
# settled, and an accepted order the kitchen cannot make is a matter for the customer.
# Rejections are final because their refund has gone out.
RECALLABLE: frozenset[tuple[OrderStatus, OrderStatus]] = frozenset(
    {
        (S.PREPARING, S.ACCEPTED),
        (S.READY, S.PREPARING),
        (S.OUT_FOR_DELIVERY, S.READY),
        (S.DELIVERED, S.READY),
        (S.DELIVERED, S.OUT_FOR_DELIVERY),
    }
)
# While the kitchen cooks, dishes can be crossed off one by one.
BUMPABLE: frozenset[OrderStatus] = frozenset({S.ACCEPTED, S.PREPARING})


def recall_target(
    *, status: OrderStatus | str, from_status: OrderStatus | str, actor: Actor | str
) -> OrderStatus | None:
    """Where a recall of the step ``from_status → status`` made by ``actor`` goes back to, or None."""
    if Actor(actor) is not Actor.STAFF or not from_status:
        return None
    step = (OrderStatus(status), OrderStatus(from_status))
    return step[1] if step in RECALLABLE else None


def allowed_next(current: OrderStatus | str, actor: Actor) -> list[OrderStatus]:
    current = OrderStatus(current)
    return [to for (frm, to), actors in TRANSITIONS.items() if frm == current and actor in actors]


def check_transition(current: OrderStatus | str, to: OrderStatus | str, actor: Actor) -> None:
    """Raise :class:`InvalidTransition` unless ``actor`` may move an order from ``current`` to ``to``."""
    current = OrderStatus(current)
    try:
        target = OrderStatus(to)
    except ValueError:
        raise InvalidTransition(f"'{to}' is not an order status.", current=current, to=str(to)) from None
    actors = TRANSITIONS.get((current, target))
    if actors is None:
        raise InvalidTransition(
            f"An order cannot go from {current.value} to {target.value}.", current=current, to=target
        )
    if actor not in actors:
        raise InvalidTransition(
            f"The {actor.value} cannot move an order from {current.value} to {target.value}.",
            current=current,
            to=target,
        )
