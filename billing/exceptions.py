"""Domain errors of billing; ``code`` is the machine code an interface reports."""

from ordering.exceptions import OrderingError


class BillingError(OrderingError):
    code = "billing_error"


class InvalidAmount(BillingError):
    code = "invalid_amount"


class DailyTopUpLimit(BillingError):
    """A top-up would take the day's top-ups over ``TOP_UP_DAILY_LIMIT``; nothing was recorded."""

    code = "top_up_daily_limit"


class InsufficientFunds(BillingError):
    code = "insufficient_funds"


class KeyReused(BillingError):
    """An idempotency key came back with a different movement."""

    code = "idempotency_conflict"


class CardDeclined(BillingError):
    code = "card_declined"


class InvalidCard(BillingError):
    code = "invalid_card"


class CardNumbersNotAccepted(BillingError):
    """A card number was sent while a real payment provider is configured: the card is entered
    on the provider's own page, never sent to Passline."""

    code = "card_numbers_not_accepted"


class ProviderUnavailable(BillingError):
    """The payment provider cannot be called now (its breaker is open, or it failed): nothing
    was recorded or charged. ``retry_after``: seconds worth waiting before trying again."""

    code = "provider_unavailable"

    def __init__(self, message: str, *, retry_after: int = 30):
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class WebhookRejected(BillingError):
    """A webhook whose signature is missing, wrong or outside the tolerance window, or whose
    body is not an event: nothing is done."""

    code = "invalid_signature"
