"""Whether the payment provider may be called now, and what a customer is told when it may not.

Every call to the provider goes through the ``payment`` circuit breaker (passline/breakers.py):
while it is open nothing new is started (ProviderUnavailable) and nothing waits on the provider.
Top-ups (billing/services/topups.py) and card orders (billing/services/card_payments.py) share
these.
"""

from __future__ import annotations

from billing.exceptions import ProviderUnavailable
from billing.provider import ProviderError
from passline.breakers import PAYMENT, BreakerOpen, is_open, retry_after

# The failures of a provider call that mean "down or slow" (a refusal is an answer instead).
PROVIDER_DOWN = (BreakerOpen, ProviderError, OSError)
UNAVAILABLE_MESSAGE = "Card payments are unavailable right now; your wallet still works. Try again in a few minutes."
# Seconds worth waiting after the provider itself failed (the breaker, when open, says its own).
RETRY_AFTER_FAILURE_SECONDS = 5


def payments_available() -> bool:
    """Whether the payment provider may be called now (its breaker is not open)."""
    return not is_open(PAYMENT)


def payments_refuse_while_unavailable() -> None:
    """ProviderUnavailable while the payment breaker is open: nothing new is started."""
    if not payments_available():
        raise ProviderUnavailable(UNAVAILABLE_MESSAGE, retry_after=retry_after(PAYMENT))


def provider_unavailable(error: Exception) -> ProviderUnavailable:
    """What a provider call that failed with one of ``PROVIDER_DOWN`` is to the customer."""
    wait = error.retry_after if isinstance(error, BreakerOpen) else RETRY_AFTER_FAILURE_SECONDS
    return ProviderUnavailable(UNAVAILABLE_MESSAGE, retry_after=wait)
