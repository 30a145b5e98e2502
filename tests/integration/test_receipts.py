"""Receipts: VAT rates kept on the order, the receipt page and its PDF, who may see them, the
paid email's VAT table and the API's VAT fields."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import cast

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import Payment
from notifications.models import Notification
from notifications.services import notifications_plan_order_step
from ordering import services
from ordering.models import MenuItem, Order, OrderLine
from ordering.status import Actor, OrderStatus
from tests.factories import (
    MenuCategoryFactory,
    MenuItemFactory,
    OrderFactory,
    RestaurantFactory,
    StaffMembershipFactory,
    UserFactory,
    verified,
)
from tests.integration.test_settings import manage
from tests.pdf import pdf_text

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def two_rates(restaurant):
    """A dish at 7 % and a drink at 19 % (prices include VAT)."""
    restaurant.address = "4 Harbour Road, Springfield"
    restaurant.save()
    food = MenuCategoryFactory(restaurant=restaurant, name="Mains")
    drinks = MenuCategoryFactory(restaurant=restaurant, name="Drinks")
    return {
        "curry": MenuItemFactory(category=food, name="Green curry", price=D("10.50"), vat_rate=D("7.00")),
        "lemonade": MenuItemFactory(category=drinks, name="Lemonade", price=D("3.90"), vat_rate=D("19.00")),
    }


def paid_order(customer, two_rates):
    """Two curries and two lemonades, paid as billing records it (the payment and the paid step)."""
    order = cast(
        Order, OrderFactory(customer=customer, items=[(two_rates["curry"], 2), (two_rates["lemonade"], 2)], paid=True)
    )
    Payment.objects.create(order=order, amount=order.total, status=Payment.Status.CHARGED)
    return order


def table(html: str, table_id: str) -> list[list[str]]:
    """The cells' text of a table of the page, row by row (the phone's repeat of quantity and
    unit price under a dish's name left out)."""
    body = html[html.index(f'id="{table_id}"') :]
    body = body[: body.index("</table>")]
    body = re.sub(r'<span class="receipt-line-each.*?</span>', "", body)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)
    ]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# The rate of the day -----------------------------------------------------------------------


def test_an_order_line_keeps_the_rate_its_dish_had_when_the_order_was_placed(customer, two_rates):
    # given an order placed at 7 % and 19 %
    order = cast(Order, OrderFactory(customer=customer, items=[(two_rates["curry"], 1), (two_rates["lemonade"], 1)]))
    # when the rates change afterwards
    two_rates["curry"].vat_rate = D("10.00")
    two_rates["curry"].save()
    # then the order's lines still carry the rates of their day
    rates = dict(OrderLine.objects.filter(order=order).values_list("name", "vat_rate"))
    assert rates == {"Green curry": D("7.00"), "Lemonade": D("19.00")}


@pytest.mark.parametrize("rate", ["abc", "100", "-1", "NaN"])
def test_a_default_rate_that_is_no_percentage_stops_the_start(rate):
    result = manage("check", PASSLINE_ENV="test", DEFAULT_VAT_RATE=rate)

    assert result.returncode != 0
    assert "DEFAULT_VAT_RATE must be a percentage from 0 to below 100" in result.stderr


def test_a_new_dish_has_the_default_rate(restaurant, settings):
    settings.DEFAULT_VAT_RATE = D("12.50")

    dish = cast(MenuItem, MenuItemFactory(category=MenuCategoryFactory(restaurant=restaurant)))

    assert dish.vat_rate == D("12.50")


# The receipt page ------------------------------------------------------------------------


def test_the_receipt_page_shows_the_lines_their_rates_and_the_vat_by_rate(customer, two_rates):
    # given a paid order with food at 7 % and drinks at 19 %
    order = paid_order(customer, two_rates)
    # when its customer opens the receipt
    response = logged_in(customer).get(reverse("order_receipt", args=[order.pk]))
    # then
    assert response.status_code == 200
    html = " ".join(response.content.decode().split())
    assert "Casa Test" in html and "4 Harbour Road, Springfield" in html
    assert f'<strong id="receipt-number">#{order.pk}</strong>' in html
    assert "Passline wallet" in html
    assert 'id="receipt-paid-at"' in html
    assert table(html, "receipt-lines") == [
        ["Dish", "Qty", "Unit price", "VAT", "Total"],
        ["Green curry", "2", "€10.50", "7.00%", "€21.00"],
        ["Lemonade", "2", "€3.90", "19.00%", "€7.80"],
        ["Total", "", "", "", "€28.80"],
    ]
    # 21.00 at 7 %: 1.37 VAT; 7.80 at 19 %: 1.25 VAT
    assert table(html, "receipt-vat") == [
        ["Rate", "Net", "VAT", "Gross"],
        ["7.00%", "€19.63", "€1.37", "€21.00"],
        ["19.00%", "€6.55", "€1.25", "€7.80"],
        ["Total", "€26.18", "€2.62", "€28.80"],
    ]
    assert reverse("order_receipt_pdf", args=[order.pk]) in html


def test_an_unpaid_order_has_no_receipt_and_the_page_says_so(customer, two_rates):
    # given an order still waiting for its payment, and one whose payment failed
    waiting = cast(Order, OrderFactory(customer=customer, items=[(two_rates["curry"], 1)]))
    failed = cast(Order, OrderFactory(customer=customer, items=[(two_rates["lemonade"], 1)]))
    services.order_transition(order_id=failed.pk, to=OrderStatus.PAYMENT_FAILED, actor_kind=Actor.SYSTEM)
    Payment.objects.create(order=failed, amount=failed.total, status=Payment.Status.FAILED)
    client = logged_in(customer)
    for order in (waiting, failed):
        # when the customer opens its receipt, or asks for its PDF
        page = client.get(reverse("order_receipt", args=[order.pk]))
        pdf = client.get(reverse("order_receipt_pdf", args=[order.pk]))
        # then the page says there is none, and there is no PDF
        assert page.status_code == 200
        assert "This order has not been paid" in page.content.decode()
        assert 'data-paid="false"' in page.content.decode()
        assert pdf.status_code == 404


def test_a_refunded_orders_receipt_says_it_was_refunded(customer, two_rates):
    # given a paid order the kitchen rejected, refunded in full
    order = paid_order(customer, two_rates)
    services.order_transition(order_id=order.pk, to=OrderStatus.REJECTED, actor_kind=Actor.SYSTEM)
    Payment.objects.filter(order=order).update(status=Payment.Status.REFUNDED, refunded_at=timezone.now())
    # when its customer opens the receipt
    html = logged_in(customer).get(reverse("order_receipt", args=[order.pk])).content.decode()
    # then it is the receipt of the payment, with the refund on it
    assert 'data-paid="true"' in html
    assert "Refunded in full" in html


def test_only_the_customer_and_the_restaurants_staff_see_a_receipt(customer, other_customer, restaurant, two_rates):
    # given a paid order, a member of its kitchen and one of another restaurant's
    order = paid_order(customer, two_rates)
    staff = StaffMembershipFactory(restaurant=restaurant).user
    elsewhere = StaffMembershipFactory(restaurant=RestaurantFactory()).user
    operator = UserFactory(is_staff=True)
    page, pdf = reverse("order_receipt", args=[order.pk]), reverse("order_receipt_pdf", args=[order.pk])
    # then
    for user, status in [(customer, 200), (staff, 200), (other_customer, 404), (elsewhere, 404), (operator, 404)]:
        assert logged_in(user).get(page).status_code == status, user
        assert logged_in(user).get(pdf).status_code == status, user
    assert logged_in(customer).get(reverse("order_receipt", args=[order.pk + 1000])).status_code == 404
    # and a visitor is asked to log in
    anonymous = Client().get(page)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))


def test_the_receipt_downloads_as_a_pdf(customer, two_rates):
    order = paid_order(customer, two_rates)

    response = logged_in(customer).get(reverse("order_receipt_pdf", args=[order.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="passline-receipt-{order.pk}.pdf"'
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    assert f"Receipt for order #{order.pk}" in text
    assert "Green curry" in text and "Lemonade" in text
    assert "19.00%" in text and "7.00%" in text
    assert "26.18" in text and "2.62" in text and "28.80" in text


def test_the_order_page_and_the_history_link_to_a_paid_orders_receipt(customer, two_rates):
    # given a paid order and one not paid yet
    paid = paid_order(customer, two_rates)
    waiting = cast(Order, OrderFactory(customer=customer, items=[(two_rates["curry"], 1)]))
    client = logged_in(customer)
    # then the paid one's page and history row link to its receipt, the waiting one's do not
    assert (
        reverse("order_receipt", args=[paid.pk]) in client.get(reverse("order_detail", args=[paid.pk])).content.decode()
    )
    assert "receipt" not in client.get(reverse("order_detail", args=[waiting.pk])).content.decode().lower()
    history = client.get(reverse("order_history")).content.decode()
    assert reverse("order_receipt", args=[paid.pk]) in history
    assert reverse("order_receipt", args=[waiting.pk]) not in history


# The paid email ---------------------------------------------------------------------------


def test_the_paid_email_carries_the_vat_table_and_a_link_to_the_receipt(customer, two_rates, settings):
    # given a paid order of a customer whose email is verified
    settings.SITE_URL = "https://passline.example"
    order = paid_order(verified(customer), two_rates)
    # when the notifier plans the paid step
    notifications_plan_order_step(order_id=order.pk, step="paid", watching=False)
    # then the email shows each line's rate, the VAT by rate and the receipt's address
    email = Notification.objects.get(order=order, message="order_paid", channel="email")
    body = email.body
    assert "2 × Green curry  €21.00 (VAT 7.00%)" in body
    assert "2 × Lemonade  €7.80 (VAT 19.00%)" in body
    rows = [" ".join(line.split()) for line in body.splitlines()]
    assert "VAT rate Net VAT Gross" in rows
    assert "7.00% €19.63 €1.37 €21.00" in rows
    assert "19.00% €6.55 €1.25 €7.80" in rows
    assert "Total €26.18 €2.62 €28.80" in rows
    assert f"https://passline.example/orders/{order.pk}/receipt/" in body
    assert email.subject == f"Order #{order.pk} is paid — Casa Test has it"


# The API ----------------------------------------------------------------------------------


def test_the_api_order_has_each_lines_rate_and_the_vat_breakdown(customer, two_rates):
    order = paid_order(customer, two_rates)
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})

    body = client.get(f"/api/v1/orders/{order.pk}").json()

    assert {item["name"]: item["vat_rate"] for item in body["items"]} == {"Green curry": "7.00", "Lemonade": "19.00"}
    assert body["vat"] == {
        "rates": [
            {"rate": "7.00", "net": "19.63", "vat": "1.37", "gross": "21.00"},
            {"rate": "19.00", "net": "6.55", "vat": "1.25", "gross": "7.80"},
        ],
        "net": "26.18",
        "vat": "2.62",
        "gross": "28.80",
    }
    assert body["vat"]["gross"] == body["total"]


def test_the_api_serves_the_receipt_pdf_to_the_customer_and_the_kitchen_only(
    customer, other_customer, restaurant, two_rates
):
    # given a paid order and an unpaid one
    order = paid_order(customer, two_rates)
    waiting = cast(Order, OrderFactory(customer=customer, items=[(two_rates["curry"], 1)]))
    staff = StaffMembershipFactory(restaurant=restaurant).user

    def get(user, order_id):
        client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=user)}"})
        return client.get(f"/api/v1/orders/{order_id}/receipt.pdf")

    # then the customer and the kitchen get the PDF
    for user in (customer, staff):
        response = get(user, order.pk)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"].startswith("attachment;")
        assert f"Receipt for order #{order.pk}" in pdf_text(response.content)
    # and another customer, or an unpaid order, is a 404 in the contract's shape
    for response in (get(other_customer, order.pk), get(customer, waiting.pk), get(customer, 2**63)):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert Client().get(f"/api/v1/orders/{order.pk}/receipt.pdf").status_code == 401


def test_the_openapi_document_describes_the_vat_fields():
    schema = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]

    assert "vat" in schema["OrderOut"]["required"]
    assert "vat_rate" in schema["OrderLineOut"]["required"]
    assert set(schema["VatOut"]["required"]) == {"rates", "net", "vat", "gross"}
    assert set(schema["VatRateOut"]["required"]) == {"rate", "net", "vat", "gross"}
    pdf = Client().get("/api/v1/openapi.json").json()["paths"]["/api/v1/orders/{order_id}/receipt.pdf"]["get"]
    assert "application/pdf" in pdf["responses"]["200"]["content"]


# The admin ---------------------------------------------------------------------------------


def test_the_admin_lists_and_edits_a_dishs_vat_rate(two_rates):
    admin = UserFactory(is_staff=True, is_superuser=True)

    listing = logged_in(admin).get("/admin/ordering/menuitem/").content.decode()
    form = logged_in(admin).get(f"/admin/ordering/menuitem/{two_rates['lemonade'].pk}/change/").content.decode()

    assert "VAT rate (%)" in listing and 'name="form-1-vat_rate"' in listing
    assert 'name="vat_rate"' in form and 'value="19.00"' in form


# Demo data ----------------------------------------------------------------------------------


def test_the_demo_menus_tax_drinks_at_another_rate_than_food():
    call_command("seed_demo", stdout=io.StringIO())

    rates = dict(MenuItem.objects.values_list("name", "vat_rate"))
    assert rates["Matcha iced tea"] == rates["Green detox"] == D("19.00")
    assert rates["Tonkotsu ramen"] == rates["Margherita"] == D("7.00")
