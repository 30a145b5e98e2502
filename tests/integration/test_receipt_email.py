"""The paid email, as the notifier's email worker sends it to a real SMTP server once the
billing worker has charged the order: it carries the receipt's VAT table and its link."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ordering.models import Order
from tests.factories import MenuCategoryFactory, MenuItemFactory, OrderFactory
from tests.integration.test_notifier import customer_with, smtp, workers  # noqa: F401 (fixtures)
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_paid_email_sent_by_the_notifier_has_the_vat_table_and_the_receipt_link(
    workers, smtp, restaurant, settings
):
    # given a customer who is emailed, and a dish at 7 % and a drink at 19 %
    settings.SITE_URL = "https://passline.example"
    customer = customer_with(email_=True)
    curry = MenuItemFactory(
        category=MenuCategoryFactory(restaurant=restaurant), name="Curry", price=Decimal("10.50"), vat_rate=7
    )
    lemonade = MenuItemFactory(
        category=MenuCategoryFactory(restaurant=restaurant), name="Lemonade", price=Decimal("3.90"), vat_rate=19
    )
    # when they order two of each and the workers charge it
    order: Order = OrderFactory(customer=customer, items=[(curry, 2), (lemonade, 2)])  # type: ignore[assignment]
    wait_until(lambda: Order.objects.get(pk=order.pk).status == "paid", what="the order to be paid")
    subject = f"Order #{order.pk} is paid — {restaurant.name} has it"
    wait_until(lambda: any(m["Subject"] == subject for m in smtp.to(customer.email)), what="the paid email")
    # then the email shows the VAT by rate, and where the receipt is
    body = next(m for m in smtp.to(customer.email) if m["Subject"] == subject).get_content()
    rows = [" ".join(line.split()) for line in body.splitlines()]
    assert "VAT rate Net VAT Gross" in rows
    assert "7.00% €19.63 €1.37 €21.00" in rows
    assert "19.00% €6.55 €1.25 €7.80" in rows
    assert "Total €26.18 €2.62 €28.80" in rows
    assert f"https://passline.example/orders/{order.pk}/receipt/" in body
