"""Forms of the staff pages: a dish, a menu category, busy mode, the restaurant's settings, opening hours.

Each one only parses and validates; the views hand ``cleaned_data`` to one service. A form with
errors changes nothing."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from ordering.hours import (
    WEEKDAYS,
    Schedule,
    TimeRange,
    exception_overlaps,
    format_ranges,
    parse_ranges,
    weekly_overlaps,
)
from ordering.models import MenuCategory, OptionGroup, Restaurant
from ordering.options import ALLERGENS, DIETARY
from ordering.services.dish_options import MAX_OPTIONS_PER_GROUP, OptionLine

PRICE_MAX = Decimal("9999.99")
VAT_RATE_MIN, VAT_RATE_MAX = Decimal("0"), Decimal("99.99")
BUSY_MAX_MINUTES = 12 * 60


class DishForm(forms.Form):
    category = forms.TypedChoiceField(coerce=int)
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 3}))
    price = forms.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=PRICE_MAX,
        help_text="In the site's currency, with at most two decimals, e.g. 12.50.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    daily_stock = forms.IntegerField(
        required=False, min_value=0, max_value=100_000, label="Daily stock", help_text="Leave empty for no daily limit."
    )
    # Not required: left out (an older client, a script), the dish keeps its rate, and a new one
    # gets DEFAULT_VAT_RATE; the page always shows it filled in.
    vat_rate = forms.DecimalField(
        required=False,
        max_digits=4,
        decimal_places=2,
        min_value=VAT_RATE_MIN,
        max_value=VAT_RATE_MAX,
        label="VAT rate (%)",
        help_text="Percent, included in the price, e.g. 7 or 19.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )

    def __init__(self, *args: Any, restaurant: Restaurant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories = MenuCategory.objects.filter(restaurant=restaurant).order_by("position", "name")
        self.fields["category"].choices = [(c.pk, c.name) for c in categories]  # type: ignore[attr-defined]

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A dish needs a name.")
        return name


class CategoryForm(forms.Form):
    name = forms.CharField(max_length=80)
    station = forms.SlugField(
        max_length=40,
        initial="kitchen",
        help_text="Which kitchen station prepares it, e.g. grill, cold, drinks (letters, digits, - and _).",
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A category needs a name.")
        return name


class BusyForm(forms.Form):
    minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=BUSY_MAX_MINUTES,
        label="Pause for (minutes)",
        help_text="Leave empty to pause until you resume.",
    )


class SettingsForm(forms.Form):
    is_open = forms.BooleanField(
        required=False, label="Open", help_text="Untick to close the restaurant by hand, whatever its hours."
    )
    prep_time_minutes = forms.IntegerField(min_value=1, max_value=240, label="Preparation time (minutes)")


class FulfilmentForm(forms.Form):
    """How the restaurant hands orders over, what delivery costs, and its address."""

    address = forms.CharField(
        label="Address", max_length=255, required=False, help_text="Where customers pick up their orders."
    )
    offers_delivery = forms.BooleanField(label="We deliver", required=False)
    offers_pickup = forms.BooleanField(label="Customers can pick up", required=False)
    delivery_fee = forms.DecimalField(
        label="Delivery fee", min_value=Decimal("0.00"), max_value=Decimal("100.00"), decimal_places=2
    )
    minimum_order = forms.DecimalField(
        label="Minimum order for delivery",
        min_value=Decimal("0.00"),
        max_value=Decimal("1000.00"),
        decimal_places=2,
        help_text="The least the dishes of a delivery must come to; pick-up has no minimum.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("offers_delivery") and not data.get("offers_pickup"):
            raise forms.ValidationError("Offer delivery, pick-up or both: customers need a way to get their food.")
        return data


def _exception_lines(text: str) -> dict[datetime.date, tuple[TimeRange, ...]]:
    exceptions: dict[datetime.date, tuple[TimeRange, ...]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        day_text, _, ranges_text = line.partition(" ")
        try:
            day = datetime.date.fromisoformat(day_text)
        except ValueError:
            raise forms.ValidationError(f"Line {number}: “{day_text}” is not a date like 2026-12-24.") from None
        try:
            exceptions[day] = parse_ranges(ranges_text)
        except ValueError as error:
            raise forms.ValidationError(f"Line {number}: {error}") from None
    return exceptions


class HoursForm(forms.Form):
    """One text field per weekday (``11:00-14:30, 18:00-23:00``, empty for closed) and the
    exceptions, one date a line."""

    exceptions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One date a line: “2026-12-25 closed” or “2026-12-31 18:00-01:00”.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for day, name in enumerate(WEEKDAYS):
            self.fields[f"day_{day}"] = forms.CharField(
                required=False, max_length=200, label=name, help_text="e.g. 11:00-14:30, 18:00-23:00; empty: closed"
            )
        self.order_fields([f"day_{day}" for day in range(7)] + ["exceptions"])

    @classmethod
    def initial_for(cls, restaurant: Restaurant) -> dict[str, str]:
        schedule = restaurant.schedule
        initial = {
            f"day_{day}": format_ranges(schedule.weekly.get(day, ())) if schedule.weekly else "" for day in range(7)
        }
        initial["exceptions"] = "\n".join(
            f"{day.isoformat()} {format_ranges(ranges)}" for day, ranges in sorted(schedule.exceptions.items())
        )
        return initial

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        weekly: dict[int, tuple[TimeRange, ...]] = {}
        for day in range(7):
            try:
                weekly[day] = parse_ranges(cleaned.get(f"day_{day}", "") or "")
            except ValueError as error:
                self.add_error(f"day_{day}", str(error))
        try:
            exceptions = _exception_lines(cleaned.get("exceptions", "") or "")
        except forms.ValidationError as error:
            self.add_error("exceptions", error)
            exceptions = {}
        # Overlapping ranges are refused, so what staff read on the page is what the hours are.
        for day, messages in weekly_overlaps(weekly).items():
            for message in messages:
                self.add_error(f"day_{day}", message)
        if not any(weekly.values()):
            weekly = {}  # no weekly hours at all: takes orders whenever open
        schedule = Schedule(weekly=weekly, exceptions=exceptions)
        for date, messages in exception_overlaps(schedule).items():
            for message in messages:
                self.add_error("exceptions", f"{date.isoformat()}: {message}")
        cleaned["schedule"] = schedule
        return cleaned


# A dish's choices (its own page, apart from the dish form) ---------------------------------


class DishTagsForm(forms.Form):
    allergens = forms.MultipleChoiceField(
        choices=ALLERGENS, required=False, widget=forms.CheckboxSelectMultiple, label="Allergens it contains"
    )
    dietary = forms.MultipleChoiceField(
        choices=DIETARY, required=False, widget=forms.CheckboxSelectMultiple, label="Dietary tags"
    )


# ``Large +3.00``, ``Small -2.00``, ``Regular``, ``Bacon +1.50 (unavailable)``
OPTION_LINE = re.compile(
    r"^(?P<name>.+?)(?:\s+(?P<delta>[+-]\s?\d{1,4}(?:[.,]\d{1,2})?))?(?:\s+\((?P<off>unavailable)\))?$"
)


def format_options(group: OptionGroup) -> str:
    """A group's options as the text the staff edit."""
    lines = []
    for option in group.options.all():
        delta = f" {'+' if option.price_delta >= 0 else '-'}{abs(option.price_delta):.2f}" if option.price_delta else ""
        lines.append(f"{option.name}{delta}{' (unavailable)' if not option.is_available else ''}")
    return "\n".join(lines)


class OptionGroupForm(forms.Form):
    group = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    name = forms.CharField(max_length=60, label="Group name", help_text="What the customer chooses, e.g. Size, Extras.")
    min_choices = forms.IntegerField(
        min_value=0, max_value=MAX_OPTIONS_PER_GROUP, initial=0, label="Fewest choices", help_text="0: optional."
    )
    max_choices = forms.IntegerField(
        min_value=1, max_value=MAX_OPTIONS_PER_GROUP, initial=1, label="Most choices", help_text="1: a single choice."
    )
    options = forms.CharField(
        label="Options",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line, with what it adds to the price: “Large +3.00”, “Small -2.00”, “Regular”. "
        "Add “(unavailable)” to stop offering one for a while.",
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A group needs a name.")
        return name

    def clean_options(self) -> list[OptionLine]:
        parsed = []
        for number, raw in enumerate(self.cleaned_data["options"].splitlines(), start=1):
            text = " ".join(raw.split())
            if not text:
                continue
            match = OPTION_LINE.match(text)
            if match is None or len(match["name"]) > 60:
                raise forms.ValidationError(
                    f"Line {number}: write a name (60 characters at most) and a price like +1.50."
                )
            delta = Decimal(match["delta"].replace(" ", "").replace(",", ".")) if match["delta"] else Decimal("0.00")
            if abs(delta) > PRICE_MAX:
                raise forms.ValidationError(f"Line {number}: the price change is too large.")
            parsed.append(
                OptionLine(name=match["name"], price_delta=delta.quantize(Decimal("0.01")), available=not match["off"])
            )
        if not parsed:
            raise forms.ValidationError("List at least one option.")
        return parsed


class PhotoForm(forms.Form):
    """A photo to upload (checked by ``ordering.photos`` when it is stored), or "remove"."""

    photo = forms.FileField(
        label="Photo",
        required=False,
        help_text=f"JPEG, PNG or WebP, up to {settings.PHOTO_MAX_BYTES // (1024 * 1024)} MB. "
        "It is cut to fit: keep the food in the middle.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}),
    )
    remove = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("photo")
        if not data.get("remove") and upload is None:
            self.add_error("photo", "Choose a photo to upload.")
        elif upload is not None and upload.size > settings.PHOTO_MAX_BYTES:
            self.add_error("photo", f"The photo is too large: at most {settings.PHOTO_MAX_BYTES // (1024 * 1024)} MB.")
        return data
