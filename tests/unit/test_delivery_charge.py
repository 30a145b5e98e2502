"""The delivery fee and minimum order (ordering.services.orders.delivery_charge): the one rule
placing an order and the checkout page's summary share. Pure: no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ordering.models import Restaurant
from ordering.services.orders import DeliveryCharge, delivery_charge

D = Decimal


@pytest.fixture
def restaurant() -> Restaurant:
    return Restaurant(name="Tidy Noodles", delivery_fee=D("2.50"), minimum_order=D("15.00"))


def test_a_delivery_pays_the_fee_and_is_below_the_minimum_only_under_it(restaurant) -> None:
    # given dishes worth just under, exactly at and over the minimum
    # when
    charges = [
        delivery_charge(restaurant=restaurant, fulfilment="delivery", subtotal=subtotal)
        for subtotal in (D("14.99"), D("15.00"), D("40.00"))
    ]
    # then the fee is always the restaurant's, and only the first is short of the minimum
    assert charges == [
        DeliveryCharge(fee=D("2.50"), below_minimum=True),
        DeliveryCharge(fee=D("2.50"), below_minimum=False),
        DeliveryCharge(fee=D("2.50"), below_minimum=False),
    ]


@pytest.mark.parametrize("fulfilment", ["pickup", "", None, "teleport"])
def test_anything_but_a_delivery_is_free_and_has_no_minimum(restaurant, fulfilment) -> None:
    # given a pick-up (or, on a checkout form not yet valid, no choice or a bad one) below the minimum
    # when
    charge = delivery_charge(restaurant=restaurant, fulfilment=fulfilment, subtotal=D("5.00"))
    # then
    assert charge == DeliveryCharge(fee=D("0.00"), below_minimum=False)
