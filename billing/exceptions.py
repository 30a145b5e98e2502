"""Domain errors of billing; ``code`` is the machine code an interface reports."""

from ordering.exceptions import OrderingError


class BillingError(OrderingError):
    code = "billing_error"


class InvalidAmount(BillingError):
    code = "invalid_amount"


class InsufficientFunds(BillingError):
    code = "insufficient_funds"


class KeyReused(BillingError):
    """An idempotency key came back with a different movement."""

    code = "idempotency_conflict"


class CardDeclined(BillingError):
    code = "card_declined"


class InvalidCard(BillingError):
    code = "invalid_card"
