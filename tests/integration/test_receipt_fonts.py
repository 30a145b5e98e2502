"""The receipt PDF prints dish and restaurant names in any script: DejaVu Sans is embedded, and
the names come back out of the PDF's text as they were typed. Without the font it falls back
to Helvetica and says so in the log."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest
from django.test import Client
from django.urls import reverse

from billing import receipt_pdf
from billing.models import Payment
from billing.receipts import order_receipt
from ordering.models import Order
from tests.factories import MenuCategoryFactory, MenuItemFactory, OrderFactory
from tests.pdf import pdf_fonts, pdf_text

pytestmark = pytest.mark.django_db
NAMES = ["Phở bò", "Ελληνική σαλάτα", "Борщ", "Crème brûlée"]


@pytest.fixture
def world_order(customer, restaurant) -> Order:
    restaurant.name, restaurant.address = "Quán Ăn Ngon", "Καλαμάτα 5"
    restaurant.save()
    category = MenuCategoryFactory(restaurant=restaurant, name="Món chính")
    dishes = [MenuItemFactory(category=category, name=name, price=Decimal("8.40")) for name in NAMES]
    order = cast(Order, OrderFactory(customer=customer, items=[(dish, 1) for dish in dishes], paid=True))
    Payment.objects.create(order=order, amount=order.total, status=Payment.Status.CHARGED)
    return order


def test_non_latin_names_survive_in_the_receipt_pdf(customer, world_order):
    client = Client()
    client.force_login(customer)

    response = client.get(reverse("order_receipt_pdf", args=[world_order.pk]))

    assert response.status_code == 200
    assert {font.split("+")[-1] for font in pdf_fonts(response.content)} >= {"DejaVuSans", "DejaVuSans-Bold"}
    text = pdf_text(response.content)
    for name in [*NAMES, "Quán Ăn Ngon", "Καλαμάτα 5"]:
        assert name in text, name
    assert f"Receipt for order #{world_order.pk}" in text and "\ufffd" not in text


def test_without_the_font_it_falls_back_to_helvetica_and_warns(
    customer, world_order, tmp_path: Path, monkeypatch, caplog
):
    monkeypatch.setattr(receipt_pdf, "FONT_DIR", tmp_path / "no-fonts-here")

    with caplog.at_level(logging.WARNING, logger="billing.receipt_pdf"):
        pdf = receipt_pdf.receipt_pdf(order_receipt(user=customer, order_id=world_order.pk))

    assert pdf.startswith(b"%PDF-")
    assert "Helvetica" in pdf_fonts(pdf) and not any("DejaVu" in font for font in pdf_fonts(pdf))
    assert "fonts-dejavu-core" in caplog.text
    assert f"Receipt for order #{world_order.pk}" in pdf_text(pdf)
