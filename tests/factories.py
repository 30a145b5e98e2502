"""factory_boy factories for the domain models."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from ordering.models import CustomerProfile, MenuCategory, MenuItem, Restaurant, StaffMembership

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"customer{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def profile(user, create, extracted, **kwargs):  # noqa: N805
        if create:
            user.save()
            CustomerProfile.objects.get_or_create(user=user, defaults={"default_address": "1 Test Lane"})


class RestaurantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Restaurant

    name = factory.Sequence(lambda n: f"Restaurant {n}")
    slug = factory.Sequence(lambda n: f"restaurant-{n}")
    description = "Good food."
    is_open = True


class MenuCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MenuCategory

    restaurant = factory.SubFactory(RestaurantFactory)
    name = factory.Sequence(lambda n: f"Category {n}")


class MenuItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MenuItem

    category = factory.SubFactory(MenuCategoryFactory)
    restaurant = factory.LazyAttribute(lambda item: item.category.restaurant)
    name = factory.Sequence(lambda n: f"Dish {n}")
    price = Decimal("10.00")


class StaffMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMembership

    user = factory.SubFactory(UserFactory)
    restaurant = factory.SubFactory(RestaurantFactory)
