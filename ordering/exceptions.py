"""Domain errors of ordering. Each interface translates them: an API error body, a form
error, a WebSocket close code, a dead letter."""

from __future__ import annotations


class OrderingError(Exception):
    """Base of the domain errors; ``code`` is the machine code of CONTRACT.md's error body."""

    code = "ordering_error"

    def __init__(self, message: str, *, code: str | None = None, **details: object):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidOrder(OrderingError):
    """The order as asked for cannot be placed (empty, unknown items, bad quantities...)."""

    code = "invalid_order"


class RestaurantClosed(InvalidOrder):
    """Closed by hand, outside its opening hours, or a closed date (``details``: reason, next_open)."""

    code = "restaurant_closed"


class RestaurantBusy(RestaurantClosed):
    """Open, but its staff paused new orders for a while (busy mode)."""

    code = "restaurant_busy"


class ItemUnavailable(InvalidOrder):
    code = "item_unavailable"


class InvalidOptions(InvalidOrder):
    """The options chosen for a dish break its groups' rules (``details.reason`` says which:
    ``unknown_option``, ``option_unavailable``, ``duplicate_option``, ``too_few_options``,
    ``too_many_options``)."""

    code = "invalid_options"


class InvalidNote(InvalidOrder):
    """A dish's note is longer than ``ordering.options.NOTE_MAX_LENGTH``."""

    code = "invalid_note"


class OutOfStock(InvalidOrder):
    code = "out_of_stock"


class TotalOutOfRange(InvalidOrder):
    """The total is one the wallet can never pay: nothing, or more than one payment may move."""

    code = "total_out_of_range"


class InvalidTransition(OrderingError):
    """The status change is not allowed from the order's current status, or not to this actor."""

    code = "invalid_transition"


class IdempotencyConflict(OrderingError):
    """An idempotency key came back with a different request."""

    code = "idempotency_conflict"


class NotFound(OrderingError):
    code = "not_found"


class PermissionDenied(OrderingError):
    code = "forbidden"


class CategoryNameTaken(OrderingError):
    """Another category of the restaurant's menu already has this name."""

    code = "category_name_taken"
