"""Fixtures shared by every kind of test."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.factories import PASSWORD, MenuCategoryFactory, MenuItemFactory, RestaurantFactory, UserFactory


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def customer(db):
    return UserFactory()


@pytest.fixture
def other_customer(db):
    return UserFactory()


@pytest.fixture
def restaurant(db):
    return RestaurantFactory(name="Casa Test")


@pytest.fixture
def menu(restaurant):
    """Two categories and three dishes; the soup has a daily stock of 5."""
    mains = MenuCategoryFactory(restaurant=restaurant, name="Mains", position=1)
    starters = MenuCategoryFactory(restaurant=restaurant, name="Starters", position=0)
    return {
        "pizza": MenuItemFactory(category=mains, name="Pizza", price=Decimal("11.50")),
        "pasta": MenuItemFactory(category=mains, name="Pasta", price=Decimal("9.25")),
        "soup": MenuItemFactory(category=starters, name="Soup", price=Decimal("4.10"), daily_stock=5),
    }
