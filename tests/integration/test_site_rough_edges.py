"""Small things a customer or an operator trips over: over-long form text, the favicon, the
405 page of a button's address, objects named in the admin."""

from __future__ import annotations

import re
from typing import cast

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from bus.models import ProcessedMessage
from ordering import services
from ordering.models import Order, OrderLine
from tests.factories import OrderFactory
from tests.integration.site_helpers import add_to_cart, checkout_token

pytestmark = pytest.mark.django_db


def test_an_over_long_address_or_note_is_a_form_error_not_a_silent_cut(client, customer, menu):
    # given: a cart at checkout
    client.force_login(customer)
    add_to_cart(client, menu["pizza"])
    page = client.get(reverse("checkout")).content.decode()
    # the inputs say their limit and carry no maxlength that would let the browser cut a paste short
    assert "Up to 255 characters." in page and "Up to 500 characters." in page
    assert not re.search(r'<(input|textarea)[^>]*name="(delivery_address|notes)"[^>]*\smaxlength=', page)

    # when: an address of 300 characters and a note of 600 are sent
    response = client.post(
        reverse("checkout"),
        {"delivery_address": "A" * 300, "notes": "n" * 600, "checkout_token": checkout_token(client)},
    )

    # then: the form says so, keeps what was typed, and no order is placed
    html = response.content.decode()
    assert response.status_code == 400
    assert "Keep the address to 255 characters or fewer (it has 300)." in html
    assert "Keep the notes to 500 characters or fewer (it has 600)." in html
    assert "A" * 300 in html
    assert not Order.objects.exists()


def test_an_address_and_a_note_at_their_limits_are_kept_whole(client, customer, menu):
    client.force_login(customer)
    add_to_cart(client, menu["pizza"])
    address, notes = "B" * 255, "n" * 500
    response = client.post(
        reverse("checkout"), {"delivery_address": address, "notes": notes, "checkout_token": checkout_token(client)}
    )
    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.delivery_address, order.notes) == (address, notes)


def test_an_over_long_default_address_on_the_account_page_is_a_form_error(client, customer):
    client.force_login(customer)
    response = client.post(reverse("profile"), {"default_address": "C" * 256})
    assert "Keep the address to 255 characters or fewer (it has 256)." in response.content.decode()
    customer.profile.refresh_from_db()
    assert customer.profile.default_address != "C" * 256


def test_favicon_ico_leads_to_the_sites_svg_icon_and_is_cached(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("img/favicon.svg")
    assert "max-age=86400" in response["Cache-Control"]
    assert finders.find("img/favicon.svg")
    # and every page links it
    assert 'rel="icon" href="/static/img/favicon.svg" type="image/svg+xml"' in client.get("/").content.decode()


def test_opening_an_orders_cancel_address_as_a_link_is_the_sites_405_page(client, customer, menu):
    order, _ = services.order_place(
        customer=customer,
        request=services.OrderRequest(
            restaurant_id=menu["pizza"].restaurant_id, items=[(menu["pizza"].pk, 1)], delivery_address="1 Lane"
        ),
    )
    client.force_login(customer)
    response = client.get(reverse("order_cancel", args=[order.pk]))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "This is done with a button" in response.content.decode()


def test_order_lines_and_processed_messages_are_named_by_what_they_are(customer, menu):
    order = cast(Order, OrderFactory(customer=customer, dish=menu["pizza"]))
    line = OrderLine.objects.get(order=order)
    assert str(line) == f"{line.quantity} × {line.name} (order #{order.pk})"
    processed = ProcessedMessage.objects.create(consumer="billing.order_placed", message_id="m-1")
    assert str(processed) == "m-1 handled by billing.order_placed"
