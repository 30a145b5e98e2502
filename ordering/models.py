"""Restaurants, menus, customers and their orders. Fields, constraints and cheap properties
only: every write goes through ``ordering.services``."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from typing import TypedDict

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from ordering.hours import Availability, Schedule, availability
from ordering.options import ALLERGENS, DIETARY, NOTE_MAX_LENGTH, labelled, options_summary
from ordering.photos import VARIANTS as PHOTO_VARIANTS
from ordering.photos import file_name as photo_file_name
from ordering.status import STATUS_LABELS, Actor, OrderStatus
from ordering.vat import Charge, Taxable


class MoneyField(TypedDict):
    """The arguments of every DecimalField that holds money."""

    max_digits: int
    decimal_places: int


MONEY: MoneyField = {"max_digits": 10, "decimal_places": 2}


def default_vat_rate() -> Decimal:
    """The VAT rate of a new dish (``DEFAULT_VAT_RATE``), read when the dish is made."""
    return Decimal(settings.DEFAULT_VAT_RATE)


# A VAT rate in percent (``7.00``); prices include it.
VAT_RATE_VALIDATORS = [MinValueValidator(Decimal("0.00")), MaxValueValidator(Decimal("99.99"))]


class Photographed(models.Model):
    """A restaurant or dish that may have a photo: ``photo`` is the digest naming its files
    (``ordering.photos``), empty without one."""

    PHOTO_KIND = ""
    photo = models.CharField(max_length=16, blank=True, editable=False)

    class Meta:
        abstract = True

    def photo_url(self, variant: str) -> str:
        if not self.photo:
            return ""
        return default_storage.url(photo_file_name(self.PHOTO_KIND, self.pk, self.photo, variant))

    @property
    def photo_urls(self) -> dict[str, str]:
        """Every variant's address, or nothing without a photo."""
        return {variant: self.photo_url(variant) for variant in PHOTO_VARIANTS} if self.photo else {}


class Restaurant(Photographed):
    PHOTO_KIND = "restaurant"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    description = models.TextField(blank=True)
    cuisine = models.CharField(max_length=60, blank=True)
    address = models.CharField(max_length=255, blank=True)
    is_open = models.BooleanField(default=True, help_text="Closed restaurants take no orders.")
    prep_time_minutes = models.PositiveSmallIntegerField(
        default=20, help_text="Typical minutes from accepting an order to having it ready."
    )
    # Fulfilment: how customers get their food, what delivery costs, and the least a delivery
    # order's dishes must come to (pick-up has no minimum).
    offers_delivery = models.BooleanField(default=True)
    offers_pickup = models.BooleanField("Offers pick-up", default=True)
    delivery_fee = models.DecimalField(
        **MONEY, default=Decimal("0.00"), validators=[MinValueValidator(Decimal("0.00"))]
    )
    minimum_order = models.DecimalField(
        **MONEY,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0.00"))],
        help_text="The least a delivery order's dishes must come to.",
    )
    # Busy mode: staff pause taking orders, until they resume or until ``busy_until`` passes
    # (no job ends it: ``ordering.hours`` compares it with the clock).
    busy = models.BooleanField(default=False, help_text="Paused by the staff: takes no orders.")
    busy_until = models.DateTimeField(null=True, blank=True, help_text="The pause ends by itself at this time.")
    # Opening hours live on the row, read with the restaurant at no extra query when an order
    # is placed. ``{"0": [["11:00", "22:00"]], ...}`` per weekday (Monday is 0), local times;
    # a range whose end is not after its start passes midnight. Empty: no schedule, open
    # whenever ``is_open``. Exceptions: ``{"2026-12-25": []}`` closed all day, or special ranges.
    opening_hours = models.JSONField(default=dict, blank=True)
    hours_exceptions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(delivery_fee__gte=0), name="restaurant_delivery_fee_not_negative"),
            models.CheckConstraint(condition=Q(minimum_order__gte=0), name="restaurant_minimum_order_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def fulfilments(self) -> list[str]:
        """The ways it hands over orders (``Fulfilment`` values), delivery first."""
        return [
            kind for kind, offered in (("delivery", self.offers_delivery), ("pickup", self.offers_pickup)) if offered
        ]

    @property
    def schedule(self) -> Schedule:
        return Schedule.from_json(self.opening_hours, self.hours_exceptions)

    def availability_at(self, now: datetime.datetime) -> Availability:
        """Whether it takes orders at ``now`` and why not (``ordering.hours``; no query)."""
        return availability(
            now=now,
            tz=timezone.get_default_timezone(),
            is_open=self.is_open,
            busy=self.busy,
            busy_until=self.busy_until,
            schedule=self.schedule,
        )

    @property
    def availability(self) -> Availability:
        return self.availability_at(timezone.now())


class StaffMembership(models.Model):
    """A user who works a restaurant's kitchen screen."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_memberships")
    restaurant = models.ForeignKey(Restaurant, on_delete=models.CASCADE, related_name="staff")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "restaurant"], name="uniq_staff_membership")]

    def __str__(self) -> str:
        return f"{self.user} at {self.restaurant}"


class MenuCategory(models.Model):
    restaurant = models.ForeignKey(Restaurant, on_delete=models.CASCADE, related_name="categories")
    name = models.CharField(max_length=80)
    position = models.PositiveSmallIntegerField(default=0)
    # Which station of the kitchen prepares this category; a kitchen screen can show just
    # some stations (the grill, the cold side, drinks).
    station = models.SlugField(max_length=40, default="kitchen", help_text="Kitchen station, e.g. grill, cold, drinks.")

    class Meta:
        ordering = ["restaurant", "position", "name"]
        verbose_name_plural = "menu categories"
        constraints = [models.UniqueConstraint(fields=["restaurant", "name"], name="uniq_category_name")]

    def __str__(self) -> str:
        return f"{self.restaurant} / {self.name}"


class MenuItem(Photographed):
    """A dish. ``daily_stock`` (optional) caps how many can be sold per day.

    The count left today lives in ``stock_remaining`` for ``stock_date``; a new day starts
    from ``daily_stock`` again without a reset job (see ``ordering.services.stock``).
    """

    PHOTO_KIND = "dish"

    restaurant = models.ForeignKey(Restaurant, on_delete=models.CASCADE, related_name="menu_items")
    category = models.ForeignKey(MenuCategory, on_delete=models.PROTECT, related_name="items")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    price = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.00"))])
    vat_rate = models.DecimalField(
        "VAT rate (%)",
        max_digits=5,
        decimal_places=2,
        default=default_vat_rate,
        validators=VAT_RATE_VALIDATORS,
        help_text="Percent, included in the price.",
    )
    is_available = models.BooleanField(default=True)
    daily_stock = models.PositiveIntegerField(null=True, blank=True, help_text="Leave empty for no daily limit.")
    stock_remaining = models.IntegerField(null=True, blank=True, editable=False)
    stock_date = models.DateField(null=True, blank=True, editable=False)
    position = models.PositiveSmallIntegerField(default=0)
    # Codes of ``ordering.options.ALLERGENS`` and ``DIETARY``, kept on the row (a JSON list) so
    # the menu reads them with the dish, at no extra query.
    allergens = models.JSONField(default=list, blank=True)
    dietary = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["category__position", "position", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="menu_item_price_not_negative"),
            models.CheckConstraint(
                condition=Q(stock_remaining__isnull=True) | Q(stock_remaining__gte=0),
                name="menu_item_stock_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(vat_rate__gte=0) & Q(vat_rate__lt=100), name="menu_item_vat_rate_percent"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def allergen_labels(self) -> list[tuple[str, str]]:
        return labelled(ALLERGENS, self.allergens)

    @property
    def dietary_labels(self) -> list[tuple[str, str]]:
        return labelled(DIETARY, self.dietary)

    def remaining_on(self, day: datetime.date) -> int | None:
        """How many can still be sold on ``day``; None when there is no limit."""
        if self.daily_stock is None:
            return None
        if self.stock_date == day and self.stock_remaining is not None:
            return self.stock_remaining
        return self.daily_stock

    @property
    def remaining_today(self) -> int | None:
        return self.remaining_on(timezone.localdate())

    @property
    def sold_out(self) -> bool:
        remaining = self.remaining_today
        return remaining is not None and remaining <= 0

    @property
    def orderable(self) -> bool:
        return self.is_available and not self.sold_out


class OptionGroup(models.Model):
    """A choice a dish asks for: a size (exactly one), extras (up to a few)."""

    menu_item = models.ForeignKey(MenuItem, on_delete=models.CASCADE, related_name="option_groups")
    name = models.CharField(max_length=60)
    min_choices = models.PositiveSmallIntegerField(default=0, help_text="0: optional; 1 or more: required.")
    max_choices = models.PositiveSmallIntegerField(default=1, help_text="How many options a customer may pick.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["menu_item", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_choices__gte=1) & Q(max_choices__gte=F("min_choices")),
                name="option_group_choices_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.menu_item} / {self.name}"


class Option(models.Model):
    """One choice of a group; ``price_delta`` is added to the dish's price (may be negative)."""

    group = models.ForeignKey(OptionGroup, on_delete=models.CASCADE, related_name="options")
    name = models.CharField(max_length=60)
    price_delta = models.DecimalField(**MONEY, default=Decimal("0.00"))
    position = models.PositiveSmallIntegerField(default=0)
    is_available = models.BooleanField(default=True)

    class Meta:
        ordering = ["group", "position", "id"]

    def __str__(self) -> str:
        return self.name


class CustomerProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    phone = models.CharField(max_length=32, blank=True)
    default_address = models.CharField(max_length=255, blank=True)
    notify_email = models.BooleanField("Email me about my orders", default=True)
    notify_sms = models.BooleanField("Text me about my orders", default=False)
    notify_push = models.BooleanField("Show live notifications in my browser", default=True)
    # Off: no email or SMS for a step the customer is watching happen on the tracking page.
    notify_while_watching = models.BooleanField("Email and text me even while I watch the order live", default=False)

    def __str__(self) -> str:
        return f"Profile of {self.user}"


class Order(models.Model):
    STATUS_CHOICES = [(s.value, STATUS_LABELS[s]) for s in OrderStatus]

    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    restaurant = models.ForeignKey(Restaurant, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=OrderStatus.PENDING_PAYMENT.value)
    # Rises by one at every status change; live pages apply only newer versions.
    version = models.PositiveIntegerField(default=1)
    # Rises at every change the kitchen screen shows (status, a dish crossed off, priority);
    # screens apply only newer revisions of a ticket.
    ticket_revision = models.PositiveIntegerField(default=1)
    priority = models.BooleanField(default=False, help_text="Flagged by the kitchen to go first.")

    class Fulfilment(models.TextChoices):
        DELIVERY = "delivery", "Delivery"
        PICKUP = "pickup", "Pick-up"

    class PaymentMethod(models.TextChoices):
        WALLET = "wallet", "Wallet"
        CARD = "card", "Card"

    # The dishes, the delivery fee and the tip.
    total = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    fulfilment = models.CharField(max_length=10, choices=Fulfilment.choices, default=Fulfilment.DELIVERY)
    # Copied from the restaurant when the order is placed (none for pick-up).
    delivery_fee = models.DecimalField(**MONEY, default=Decimal("0.00"))
    delivery_vat_rate = models.DecimalField(
        "VAT rate of the delivery fee (%)",
        max_digits=5,
        decimal_places=2,
        default=default_vat_rate,
        validators=VAT_RATE_VALIDATORS,
    )
    tip = models.DecimalField(**MONEY, default=Decimal("0.00"))
    # Paid from the wallet (billing charges it on order.placed), or by card through the payment
    # provider (billing leaves it to the provider's webhook).
    payment_method = models.CharField(max_length=10, choices=PaymentMethod.choices, default=PaymentMethod.WALLET)
    # Ordered ahead for this time; None: as soon as possible.
    scheduled_for = models.DateTimeField(null=True, blank=True)
    # Empty for pick-up.
    delivery_address = models.CharField(max_length=255, blank=True)
    notes = models.CharField(max_length=500, blank=True)
    # The client's Idempotency-Key and a digest of the request it came with: the same key
    # with the same request returns this order, with another request it is a conflict. Compared
    # byte for byte: keys that differ only in case, accents or trailing spaces are different keys
    # (utf8mb4_bin would still ignore trailing spaces; the NO PAD binary collation does not).
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, db_collation="utf8mb4_nopad_bin")
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # The business day whose stock this order reserved.
    stock_date = models.DateField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "idempotency_key"], name="uniq_order_idempotency_key"),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(condition=Q(delivery_fee__gte=0), name="order_delivery_fee_not_negative"),
            models.CheckConstraint(condition=Q(tip__gte=0), name="order_tip_not_negative"),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="order_customer_recent"),
            models.Index(fields=["restaurant", "status"], name="order_restaurant_status"),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[OrderStatus(self.status)]

    @property
    def subtotal(self) -> Decimal:
        """The dishes: the total less the delivery fee and the tip."""
        return self.total - self.delivery_fee - self.tip

    @property
    def is_pickup(self) -> bool:
        return self.fulfilment == Order.Fulfilment.PICKUP

    def taxables(self, lines: Iterable[Taxable]) -> list[Taxable]:
        """What the VAT table covers: the dishes and the delivery fee (a tip is outside VAT)."""
        items = list(lines)
        if self.delivery_fee:
            items.append(Charge(vat_rate=self.delivery_vat_rate, line_total=self.delivery_fee))
        return items


class OrderLine(models.Model):
    """One dish of an order, its name and price copied at order time."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    menu_item = models.ForeignKey(MenuItem, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    unit_price = models.DecimalField(**MONEY)
    # The dish's VAT rate when the order was placed: a receipt shows the rate of its day.
    vat_rate = models.DecimalField(
        "VAT rate (%)", max_digits=5, decimal_places=2, default=default_vat_rate, validators=VAT_RATE_VALIDATORS
    )
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    # The options chosen, copied at order time: ``[{"option_id", "group", "name", "price_delta"}]``
    # (``price_delta`` a decimal string); ``unit_price`` already includes them.
    options = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)
    # When the kitchen crossed this dish off ("bumped" it); None while still to make.
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(vat_rate__gte=0) & Q(vat_rate__lt=100), name="order_line_vat_rate_percent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.name} (order #{self.order_id})"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def options_text(self) -> str:
        """The chosen options in one line, as every page, email and ticket shows them."""
        return options_summary(self.options)


class OrderEvent(models.Model):
    """One step of an order's life, append-only. ``version`` is the order's version after it."""

    ACTOR_CHOICES = [(a.value, a.value) for a in Actor]

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Order.STATUS_CHOICES)
    from_status = models.CharField(max_length=20, choices=Order.STATUS_CHOICES, blank=True)
    actor_kind = models.CharField(max_length=10, choices=ACTOR_CHOICES)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order", "version"]
        constraints = [models.UniqueConstraint(fields=["order", "version"], name="uniq_order_event_version")]

    def __str__(self) -> str:
        return f"{self.order} v{self.version} {self.status}"


class ApiToken(models.Model):
    """A bearer token of the JSON API and the refresh token issued with it, as a pair. Only
    their SHA-256 digests are stored.

    A pair is void once ``revoked_at`` is set (logout, refreshed, a site logout), once it
    expires, or once the user's password changes by any path (``password_stamp`` no longer
    matches the password hash). Refreshing revokes the pair and issues the next one of the
    same ``family``; a refresh token presented twice revokes the whole family.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    refresh_digest = models.CharField(max_length=64, unique=True)
    # Every pair refreshed from one sign-in.
    family = models.CharField(max_length=32, db_index=True)
    # An HMAC of the user's password hash when the pair was issued.
    password_stamp = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    refresh_expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"], name="apitoken_user_live")]

    def __str__(self) -> str:
        return f"API token of {self.user}"
