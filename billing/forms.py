"""Forms of the wallet page and of the simulated provider's confirmation page. They parse
input; the top-up service has the last word on amounts, the provider on card numbers."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator

from billing.services.wallets import MAX_MOVEMENT

# A form token is a random URL-safe string made by :func:`new_form_token`.
form_token_validator = RegexValidator(r"^[A-Za-z0-9_-]{16,64}$", "This form has expired. Please try again.")


def new_form_token() -> str:
    """A fresh per-render token: the idempotency key of one top-up form."""
    return secrets.token_urlsafe(24)


SYMBOL = settings.CURRENCY_SYMBOL
AT_MOST = f"At most {SYMBOL}{MAX_MOVEMENT:,.2f} at a time."


class TopUpForm(forms.Form):
    # No max_digits: a long number would then fail both it and max_value, and the page would say
    # "at most … at a time" twice. max_value alone refuses it, once.
    amount = forms.DecimalField(
        label="Amount",
        help_text=f"Up to {SYMBOL}{MAX_MOVEMENT:,.2f} at a time and {SYMBOL}{settings.TOP_UP_DAILY_LIMIT:,.2f} a day.",
        min_value=Decimal("0.01"),
        max_value=MAX_MOVEMENT,
        decimal_places=2,
        error_messages={
            "required": "Enter the amount to add.",
            "invalid": "Enter an amount such as 20 or 12.50.",
            "min_value": "Enter an amount of more than zero.",
            "max_value": AT_MOST,
            "max_decimal_places": "Use at most two decimals (cents).",
        },
        widget=forms.NumberInput(
            attrs={
                "inputmode": "decimal",
                "step": "0.01",
                "min": "0.01",
                "class": "amount-input",
                "autocomplete": "transaction-amount",
            }
        ),
    )
    # Set by the confirmation step of a large top-up (over TOP_UP_CONFIRM_ABOVE).
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)
    top_up_token = forms.CharField(
        max_length=64,
        validators=[form_token_validator],
        error_messages={"required": "This form has expired. Please try again."},
        widget=forms.HiddenInput,
    )


class SimulatedCardForm(forms.Form):
    """The simulated provider's card field (the real providers' hosted field stands here)."""

    card_number = forms.CharField(
        label="Card number",
        max_length=23,
        error_messages={"required": "Enter your card number.", "max_length": "A card number has at most 19 digits."},
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-number", "inputmode": "numeric", "autocorrect": "off", "spellcheck": "false"}
        ),
    )
