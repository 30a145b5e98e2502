"""Forms of the customer site. They only parse and validate input; views hand the clean
values to a service, which has the last word on every business rule."""

from __future__ import annotations

import datetime
import secrets
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import timezone

from ordering.models import Restaurant
from ordering.options import NOTE_MAX_LENGTH
from ordering.search import MAX_QUERY

MAX_QUANTITY = settings.ORDER_MAX_QUANTITY_PER_LINE

# A checkout token is a random URL-safe string made by :func:`new_checkout_token`.
checkout_token_validator = RegexValidator(
    r"^[A-Za-z0-9_-]{16,64}$", "This checkout form has expired. Please try again."
)


def new_checkout_token() -> str:
    """A fresh per-render token: the idempotency key of one checkout form."""
    return secrets.token_urlsafe(24)


def _quantity_field(*, min_value: int, label: str = "Quantity") -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=min_value,
        max_value=MAX_QUANTITY,
        initial=1,
        error_messages={
            "required": "Enter a quantity.",
            "invalid": "Enter a whole number.",
            "min_value": f"Enter a quantity of at least {min_value}.",
            "max_value": f"At most {MAX_QUANTITY} of one dish per order.",
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "qty-input"}),
    )


class LimitedTextField(forms.CharField):
    """Text with a length limit that the server enforces with a form error naming the limit.

    The input gets no ``maxlength`` attribute: with one, a browser cuts a pasted address or note
    at the limit without a word. The limit is said in the help text instead, and is kept in
    ``data-maxlength`` for scripts.
    """

    def __init__(self, *, max_length: int, what: str, help_text: str = "", **kwargs: Any) -> None:
        error_messages = {
            "max_length": f"Keep the {what} to {max_length} characters or fewer (it has %(show_value)d).",
            **kwargs.pop("error_messages", {}),
        }
        hint = f"Up to {max_length} characters."
        super().__init__(
            max_length=max_length,
            help_text=f"{help_text} {hint}" if help_text else hint,
            error_messages=error_messages,
            **kwargs,
        )

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        attrs["data-maxlength"] = str(self.max_length)
        return attrs


class RestaurantSearchForm(forms.Form):
    """The restaurant list's search box and cuisine filter (GET: the results have a link)."""

    q = forms.CharField(
        label="Search restaurants and dishes",
        required=False,
        max_length=MAX_QUERY,
        error_messages={"max_length": f"Search for at most {MAX_QUERY} characters."},
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Curry, pizza, vegan…", "autocomplete": "off"}),
    )
    cuisine = forms.ChoiceField(label="Cuisine", required=False)

    def __init__(self, *args: Any, cuisines: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ChoiceField, self.fields["cuisine"])
        field.choices = [("", "All cuisines"), *((name, name) for name in cuisines)]
        field.error_messages["invalid_choice"] = "There is no restaurant of that cuisine."


class AddToCartForm(forms.Form):
    item_id = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    quantity = _quantity_field(min_value=1)
    # The dish's options (``option`` inputs, ids) are checked by the view against the dish's groups.
    option = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=[])
    note = LimitedTextField(label="Note for the kitchen", max_length=NOTE_MAX_LENGTH, what="note", required=False)

    def clean_option(self) -> list[int]:
        return list(self.cleaned_data.get("option") or [])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any whole numbers: which ids belong to the dish is the view's (and the service's) check.
        values = self.data.getlist("option") if hasattr(self.data, "getlist") else []
        self.fields["option"].choices = [(v, v) for v in values if v.isdigit() and len(v) < 19]  # type: ignore[attr-defined]


class CartLineForm(forms.Form):
    """Change one cart line: ``action`` is ``update`` (0 removes the dish) or ``remove``."""

    ACTIONS = [("update", "Update"), ("remove", "Remove")]

    item_id = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    # Which line of that dish (its options and note); without it, the dish's plain line.
    line = forms.RegexField(r"^[0-9][0-9a-f.\-]{0,300}$", required=False, widget=forms.HiddenInput)
    quantity = _quantity_field(min_value=0)
    action = forms.ChoiceField(choices=ACTIONS, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Removing needs no quantity.
        if self.data.get("action") == "remove":
            self.fields["quantity"].required = False

    def clean_action(self) -> str:
        return self.cleaned_data.get("action") or "update"


ASAP = "asap"
# The tip choices: a share of the dishes, or an amount.
TIP_CHOICES = [("0", "No tip"), ("10", "10 %"), ("15", "15 %"), ("custom", "Other amount")]


class CheckoutForm(forms.Form):
    """Delivery or pick-up, where, when, a tip and notes. ``restaurant`` decides which ways are
    offered, ``subtotal`` what a percentage tip comes to, ``slots`` the times to order ahead for
    (``ordering.selectors.order_ahead_slots``)."""

    # Not sent (an older page): the restaurant's first way, as soon as possible, no tip.
    fulfilment = forms.ChoiceField(label="How do you want it?", required=False, widget=forms.RadioSelect)
    delivery_address = LimitedTextField(
        label="Delivery address",
        max_length=255,
        what="address",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
    )
    when = forms.ChoiceField(label="When", required=False)
    tip_choice = forms.ChoiceField(
        label="Tip for the staff", choices=TIP_CHOICES, initial="0", required=False, widget=forms.RadioSelect
    )
    tip_amount = forms.DecimalField(
        label="Tip amount",
        required=False,
        min_value=Decimal("0.00"),
        max_value=settings.ORDER_TIP_MAX,
        decimal_places=2,
        error_messages={
            "min_value": "A tip cannot be negative.",
            "max_value": f"A tip can be at most {settings.CURRENCY_SYMBOL}{settings.ORDER_TIP_MAX:,.2f}.",
            "max_decimal_places": "Enter the tip in cents at most.",
            "invalid": "Enter an amount, e.g. 2.50.",
        },
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01", "min": "0"}),
    )
    payment_method = forms.ChoiceField(
        label="How do you want to pay?",
        choices=[("wallet", "Pay with wallet"), ("card", "Pay by card")],
        initial="wallet",
        required=False,
        widget=forms.RadioSelect,
    )
    notes = LimitedTextField(
        label="Notes for the restaurant",
        help_text="Allergies, a door code, how to find you.",
        max_length=500,
        what="notes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    checkout_token = forms.CharField(
        max_length=64,
        validators=[checkout_token_validator],
        error_messages={"required": "This checkout form has expired. Please try again."},
        widget=forms.HiddenInput,
    )

    def __init__(
        self,
        *args: Any,
        restaurant: Restaurant,
        subtotal: Decimal,
        slots: list[datetime.datetime],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.subtotal = subtotal
        # Needed only for some choices (the address for delivery, the amount for "Other amount"),
        # or never empty (when): not labelled "optional" (includes/field.html).
        for name in ("delivery_address", "when", "tip_amount"):
            self.fields[name].conditional = True  # type: ignore[attr-defined]
        labels = {"delivery": "Delivery", "pickup": "Pick-up at the restaurant"}
        if restaurant.offers_delivery and restaurant.delivery_fee:
            labels["delivery"] = f"Delivery ({settings.CURRENCY_SYMBOL}{restaurant.delivery_fee:,.2f})"
        fulfilment = cast(forms.ChoiceField, self.fields["fulfilment"])
        fulfilment.choices = [(kind, labels[kind]) for kind in restaurant.fulfilments]
        fulfilment.initial = restaurant.fulfilments[0] if restaurant.fulfilments else None
        fulfilment.error_messages["invalid_choice"] = f"{restaurant.name} does not offer that."
        when = cast(forms.ChoiceField, self.fields["when"])
        when.choices = [(ASAP, "As soon as possible"), *((slot_value(slot), slot_label(slot)) for slot in slots)]
        when.initial = ASAP
        when.error_messages["invalid_choice"] = "That time is no longer available. Choose another."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("fulfilment") and "fulfilment" not in self.errors:
            data["fulfilment"] = self.fields["fulfilment"].initial or "delivery"
        data["tip_choice"] = data.get("tip_choice") or "0"
        if data.get("fulfilment") == "delivery" and not (data.get("delivery_address") or "").strip():
            self.add_error("delivery_address", "Enter the address we should deliver to.")
        choice = data.get("tip_choice")
        if choice == "custom":
            if data.get("tip_amount") is None and "tip_amount" not in self.errors:
                self.add_error("tip_amount", "Enter the tip, or choose another option.")
            data["tip"] = data.get("tip_amount") or Decimal("0.00")
        elif choice:
            data["tip"] = (self.subtotal * Decimal(choice) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        raw = data.get("when")
        data["scheduled_for"] = None if raw in (None, "", ASAP) else datetime.datetime.fromisoformat(raw)
        return data


def slot_value(slot: datetime.datetime) -> str:
    """A slot as the form posts it (UTC, ISO 8601)."""
    return slot.astimezone(datetime.UTC).isoformat()


def slot_label(slot: datetime.datetime) -> str:
    """``Today 19:30``, ``Tomorrow 12:00``, ``Sat 6 Dec 12:00``, in the site's time zone."""
    local = timezone.localtime(slot)
    days = (local.date() - timezone.localdate()).days
    day = "Today" if days == 0 else "Tomorrow" if days == 1 else f"{local:%a %-d %b}"
    return f"{day} {local:%H:%M}"


class SignupForm(forms.Form):
    username = forms.CharField(
        label="Username",
        max_length=150,
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    email = forms.EmailField(label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        label="Password",
        strip=False,
        help_text="At least 8 characters, not too common, not all digits.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_confirm = forms.CharField(
        label="Confirm password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        password, confirm = cleaned.get("password"), cleaned.get("password_confirm")
        if password and confirm and password != confirm:
            self.add_error("password_confirm", "The two passwords do not match.")
        return cleaned


class ProfileForm(forms.Form):
    phone = forms.CharField(
        label="Phone",
        max_length=32,
        required=False,
        validators=[RegexValidator(r"^[0-9+()\-. ]*$", "Use digits, spaces and + ( ) - only.")],
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )
    default_address = LimitedTextField(
        label="Default delivery address",
        max_length=255,
        what="address",
        required=False,
        help_text="Filled in for you at checkout.",
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
    )
    notify_email = forms.BooleanField(label="Email me about my orders", required=False)
    notify_sms = forms.BooleanField(label="Text me about my orders", required=False)
    notify_push = forms.BooleanField(label="Show live notifications in my browser", required=False)
    notify_while_watching = forms.BooleanField(
        label="Email and text me even while I watch the order live",
        required=False,
        help_text="Otherwise we don't email or text you about a step you see happen on the order's page.",
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("notify_sms") and not (cleaned.get("phone") or "").strip():
            self.add_error("phone", "Add a phone number to get text messages.")
        return cleaned
