"""Load the demo restaurants and logins (idempotently). Refused in production."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.models import LedgerEntry
from billing.services.wallets import wallet_credit
from notifications.addresses import address_mark_verified
from ordering.demo import (
    BOTH_FREE,
    DEMO_HOURS,
    DEMO_PASSWORD,
    FOOD_VAT_RATE,
    FULFILMENT,
    OPTIONS,
    RESTAURANTS,
    STATIONS,
    TAGS,
    VAT_RATES,
    OptionGroupSeed,
    money,
)
from ordering.demo_photos import picture
from ordering.models import CustomerProfile, MenuCategory, MenuItem, Option, OptionGroup, Restaurant, StaffMembership
from ordering.services.photos import dish_photo_set, restaurant_photo_set


class Command(BaseCommand):
    help = "Create the demo restaurants, menus and the admin/demo/kitchenN logins (idempotent)."

    def handle(self, *args, **options) -> None:
        # Before any connection is opened: production refuses whatever its database says.
        if settings.PRODUCTION:
            raise CommandError("Demo data is never created with PASSLINE_ENV=production.")
        with transaction.atomic():
            self._seed()

    def _seed(self) -> None:
        restaurants = []
        for name, slug, cuisine, description, prep, menu in RESTAURANTS:
            delivers, pickup, fee, minimum = FULFILMENT.get(slug, BOTH_FREE)
            restaurant, _ = Restaurant.objects.update_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "cuisine": cuisine,
                    "description": description,
                    "prep_time_minutes": prep,
                    "is_open": True,
                    "busy": False,
                    "busy_until": None,
                    "opening_hours": DEMO_HOURS,
                    "offers_delivery": delivers,
                    "offers_pickup": pickup,
                    "delivery_fee": money(fee),
                    "minimum_order": money(minimum),
                },
            )
            restaurants.append(restaurant)
            if not restaurant.photo:
                restaurant.photo = restaurant_photo_set(
                    restaurant_id=restaurant.pk, data=picture(restaurant.name)
                ).photo
            for position, (category_name, dishes) in enumerate(menu.items()):
                category, _ = MenuCategory.objects.update_or_create(
                    restaurant=restaurant,
                    name=category_name,
                    defaults={"position": position, "station": STATIONS.get(category_name, "kitchen")},
                )
                for dish_position, (dish, dish_description, price, stock) in enumerate(dishes):
                    allergens, dietary = TAGS.get(dish, ([], []))
                    item, _ = MenuItem.objects.update_or_create(
                        restaurant=restaurant,
                        name=dish,
                        defaults={
                            "category": category,
                            "description": dish_description,
                            "price": money(price),
                            "vat_rate": money(VAT_RATES.get(category_name, FOOD_VAT_RATE)),
                            "daily_stock": stock,
                            "position": dish_position,
                            "is_available": True,
                            "allergens": allergens,
                            "dietary": dietary,
                        },
                    )
                    if not item.photo:
                        dish_photo_set(restaurant_id=restaurant.pk, menu_item_id=item.pk, data=picture(dish))
                    self._seed_options(item, OPTIONS.get(dish, []))

        self._seed_logins(restaurants)

    def _seed_options(self, item: MenuItem, groups: list[OptionGroupSeed]) -> None:
        for position, (name, least, most, options) in enumerate(groups):
            group, _ = OptionGroup.objects.update_or_create(
                menu_item=item,
                name=name,
                defaults={"min_choices": least, "max_choices": most, "position": position},
            )
            for option_position, (option, delta) in enumerate(options):
                Option.objects.update_or_create(
                    group=group,
                    name=option,
                    defaults={"price_delta": money(delta), "position": option_position, "is_available": True},
                )

    def _seed_logins(self, restaurants: list[Restaurant]) -> None:
        User = get_user_model()

        def login(username: str, **extra: object):
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@passline.example", **extra}
            )
            if created or not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
                user.save()
            CustomerProfile.objects.get_or_create(
                user=user, defaults={"default_address": "12 Market Street, Springfield"}
            )
            return user

        login("admin", is_staff=True, is_superuser=True)
        demo = login("demo")
        address_mark_verified(user=demo, channel="email")  # the demo customer's emails go out
        # Money to order with; the key makes it once, however often the demo is loaded.
        wallet_credit(
            user_id=demo.pk,
            amount="100.00",
            kind=LedgerEntry.Kind.TOP_UP,
            key="demo:welcome-credit",
            description="Welcome credit",
        )
        for number, restaurant in enumerate(restaurants, start=1):
            StaffMembership.objects.get_or_create(user=login(f"kitchen{number}"), restaurant=restaurant)
        self.stdout.write(
            f"Demo data ready: {len(restaurants)} restaurants, logins admin, demo (wallet {demo.wallet.balance}), kitchen1-3."
        )
