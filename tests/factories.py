"""factory_boy factories for the domain models.

Orders and money go through the real services, as the app makes them: ``OrderFactory`` places
an order with ``order_place`` (stock reserved, total from current prices, order.placed in the
outbox) and ``WalletFactory`` tops a wallet up with ``wallet_credit`` (a ledger entry, the
balance.changed event). ``OrderRowFactory`` writes a bare row, for a test that needs an order
in a given status without the path that leads there."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone

from billing.models import Wallet
from billing.services.wallets import wallet_credit
from ordering.models import (
    CustomerProfile,
    MenuCategory,
    MenuItem,
    Option,
    OptionGroup,
    Order,
    Restaurant,
    StaffMembership,
)
from ordering.services import ItemRequest, OrderRequest, order_place, order_transition
from ordering.status import Actor, OrderStatus

PASSWORD = "correct-horse-battery"


class CustomerFactory(factory.django.DjangoModelFactory[User]):
    """A user who can log in with PASSWORD, with a customer profile (its address 1 Test Lane)."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"customer{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def profile(user, create, extracted, **kwargs):
        if create:
            user.save()
            CustomerProfile.objects.get_or_create(user=user, defaults={"default_address": "1 Test Lane"})


# Staff and operators are users like any other, with a profile they never use.
UserFactory = CustomerFactory


class RestaurantFactory(factory.django.DjangoModelFactory[Restaurant]):
    class Meta:
        model = Restaurant

    name = factory.Sequence(lambda n: f"Restaurant {n}")
    slug = factory.Sequence(lambda n: f"restaurant-{n}")
    description = "Good food."
    is_open = True


class MenuCategoryFactory(factory.django.DjangoModelFactory[MenuCategory]):
    class Meta:
        model = MenuCategory

    restaurant = factory.SubFactory(RestaurantFactory)
    name = factory.Sequence(lambda n: f"Category {n}")


class MenuItemFactory(factory.django.DjangoModelFactory[MenuItem]):
    class Meta:
        model = MenuItem

    category = factory.SubFactory(MenuCategoryFactory)
    restaurant = factory.LazyAttribute(lambda item: item.category.restaurant)
    name = factory.Sequence(lambda n: f"Dish {n}")
    price = Decimal("10.00")


class OptionGroupFactory(factory.django.DjangoModelFactory[OptionGroup]):
    """An optional single choice unless told otherwise."""

    class Meta:
        model = OptionGroup

    menu_item = factory.SubFactory(MenuItemFactory)
    name = factory.Sequence(lambda n: f"Group {n}")
    min_choices = 0
    max_choices = 1


class OptionFactory(factory.django.DjangoModelFactory[Option]):
    class Meta:
        model = Option

    group = factory.SubFactory(OptionGroupFactory)
    name = factory.Sequence(lambda n: f"Option {n}")
    price_delta = Decimal("0.00")


class StaffMembershipFactory(factory.django.DjangoModelFactory[StaffMembership]):
    class Meta:
        model = StaffMembership

    user = factory.SubFactory(UserFactory)
    restaurant = factory.SubFactory(RestaurantFactory)


def _item_request(item: MenuItem, quantity: int, options: tuple[Option, ...] = (), note: str = "") -> ItemRequest:
    return ItemRequest(item.pk, quantity, tuple(option.pk for option in options), note)


class OrderFactory(factory.Factory[Order]):
    """A placed order (``pending_payment``), through ``order_place``; ``paid=True`` then pays it
    as the billing worker would. ``items`` is a list of (menu item, quantity), of one
    restaurant; or name one ``dish`` and a ``quantity``."""

    class Meta:
        model = Order

    class Params:
        dish = None
        quantity = 1

    customer = factory.SubFactory(CustomerFactory)
    items = factory.LazyAttribute(lambda order: [(order.dish or MenuItemFactory(), order.quantity)])
    delivery_address = "1 Test Lane"
    notes = ""
    idempotency_key = None
    paid = False
    fulfilment = "delivery"
    tip = Decimal("0.00")
    scheduled_for = None

    @classmethod
    def _create(
        cls,
        model_class,
        *,
        customer,
        items,
        delivery_address,
        notes,
        idempotency_key,
        paid,
        fulfilment,
        tip,
        scheduled_for,
    ):
        request = OrderRequest(
            restaurant_id=items[0][0].restaurant_id,
            # (item, quantity) or (item, quantity, [options], note)
            items=[_item_request(*entry) for entry in items],
            delivery_address=delivery_address,
            notes=notes,
            fulfilment=fulfilment,
            tip=tip,
            scheduled_for=scheduled_for,
        )
        order, _ = order_place(customer=customer, request=request, idempotency_key=idempotency_key)
        if paid:
            order = order_transition(order_id=order.pk, to=OrderStatus.PAID, actor_kind=Actor.SYSTEM)
        return order

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise TypeError("an order is only ever placed: use OrderFactory(), or OrderRowFactory.build()")


class OrderRowFactory(factory.django.DjangoModelFactory[Order]):
    """An order row as it is, no lines, events or outbox: for a test that needs a status."""

    class Meta:
        model = Order

    customer = factory.SubFactory(CustomerFactory)
    restaurant = factory.SubFactory(RestaurantFactory)
    total = Decimal("10.00")
    currency = "EUR"
    delivery_address = "1 Test Lane"
    stock_date = factory.LazyFunction(lambda: timezone.localdate())


class WalletFactory(factory.Factory[Wallet]):
    """A customer's wallet topped up with ``balance`` through ``wallet_credit``."""

    class Meta:
        model = Wallet

    user = factory.SubFactory(CustomerFactory)
    balance = Decimal("50.00")
    key = factory.Sequence(lambda n: f"test-top-up-{n}")
    description = "Top-up"

    @classmethod
    def _create(cls, model_class, *, user, balance, key, description):
        wallet_credit(user_id=user.pk, amount=balance, kind="top_up", key=key, description=description)
        return Wallet.objects.get(user=user)


def verified(user: User, *, email: bool = True, phone: bool = False) -> User:
    """Mark the user's current email address (and phone number) as verified, as following the
    emailed link (and typing the texted code) would: emails and texts go only to those."""
    from notifications.addresses import address_mark_verified

    if email:
        address_mark_verified(user=user, channel="email")
    if phone:
        address_mark_verified(user=user, channel="sms")
    return user


def prepare_requested_top_ups() -> list[int]:
    """What the billing worker does with the ``top_up.requested`` messages in the outbox (for a
    test without the bus running): ask the provider for each top-up's intent. The prepared ids."""
    from billing.events import TOP_UP_REQUESTED
    from billing.services.topups import top_up_prepare
    from bus.envelope import Envelope
    from bus.models import OutboxMessage

    prepared = []
    for row in OutboxMessage.objects.filter(type=TOP_UP_REQUESTED.name).order_by("pk"):
        payload = Envelope.from_json(row.body).payload
        if top_up_prepare(top_up_id=payload["top_up_id"], return_url=payload["return_url"]) is not None:
            prepared.append(payload["top_up_id"])
    return prepared
