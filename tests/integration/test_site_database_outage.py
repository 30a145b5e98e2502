"""The customer site when the database goes away mid-request: a friendly 503 page with
Retry-After, never a traceback or a 500; the checkout form sent again places one order."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from ordering import selectors
from ordering.models import Order
from tests.integration.db_outage import connection_killed_before
from tests.integration.site_helpers import add_to_cart, checkout_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser(customer) -> Client:
    # As a browser sees it: the answer the server sends, not the exception behind it.
    client = Client(raise_request_exception=False)
    client.force_login(customer)
    return client


def assert_unavailable_page(response) -> None:
    html = response.content.decode()
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) > 0
    assert "briefly unavailable" in html and "Traceback" not in html


def test_a_page_whose_connection_is_lost_is_a_503_page(browser, customer, menu):
    with connection_killed_before(r"FROM `ordering_order`"):
        response = browser.get(reverse("order_history"))

    assert_unavailable_page(response)
    # and the next page is served on a new connection
    assert browser.get(reverse("order_history")).status_code == 200


def test_a_checkout_that_loses_its_connection_is_a_503_and_the_same_form_again_places_one_order(browser, menu):
    # given a cart and its checkout form
    add_to_cart(browser, menu["pizza"], 2)
    form = {"delivery_address": "9 Elm Street", "notes": "", "checkout_token": checkout_token(browser)}
    # when: the connection is killed before the order's last write
    with connection_killed_before(r"INSERT INTO `bus_outboxmessage`"):
        lost = browser.post(reverse("checkout"), form)
    # then
    assert_unavailable_page(lost)
    assert not Order.objects.exists()

    # when: the browser sends the same form again (a reload), twice
    placed = browser.post(reverse("checkout"), form)
    again = browser.post(reverse("checkout"), form)

    # then: one order, and both answers lead to it
    order = Order.objects.get()
    assert placed.status_code == again.status_code == 302
    assert placed["Location"] == again["Location"] == reverse("order_detail", args=[order.pk])


def test_a_page_that_fails_for_any_other_reason_is_the_500_page(browser, monkeypatch):
    def broken(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM ordering_order")

    monkeypatch.setattr(selectors, "customer_orders", broken)

    response = browser.get(reverse("order_history"))

    assert response.status_code == 500
    assert "Retry-After" not in response
    assert "Something went wrong on our side" in response.content.decode()
