"""Orders paid by card in one step: the provider's intent for exactly the order's total, settled
by its signed webhook through the same payment row and events as a wallet charge, exactly once,
never touching the wallet, and a late payment refunded to the wallet."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import LedgerEntry, Payment, Wallet
from billing.provider import EVENT_FAILED, EVENT_SUCCEEDED, SUCCEEDED, PaymentIntent, SimulatedProvider
from billing.services.card_payments import order_card_start
from billing.services.payments import order_charge
from bus.models import OutboxMessage
from ordering import services
from ordering.models import Order
from tests.integration.site_helpers import add_to_cart

pytestmark = pytest.mark.django_db
JSON = "application/json"
HEADER = SimulatedProvider.signature_header


def place(customer, menu, method: str = "card") -> Order:
    order, _ = services.order_place(
        customer=customer,
        request=services.OrderRequest(
            restaurant_id=menu["pizza"].category.restaurant_id,
            items=[(menu["pizza"].pk, 2)],
            delivery_address="1 Test Lane",
            payment_method=method,
        ),
    )
    return order


def start(order: Order) -> PaymentIntent:
    return order_card_start(order_id=order.pk, customer_id=order.customer_id, return_url="http://testserver/o/")


def deliver(event_type: str, intent: PaymentIntent, **changes: Any):
    payload, signature = SimulatedProvider.signed_event(event_type, dataclasses.replace(intent, **changes))
    return Client().post(reverse("payment_webhook"), payload, content_type=JSON, headers={HEADER: signature})


def events_of(order: Order) -> list[str]:
    return list(
        OutboxMessage.objects.filter(aggregate=f"order:{order.pk}").order_by("pk").values_list("type", flat=True)
    )


def test_a_card_order_gets_an_intent_for_exactly_its_total_naming_the_order(customer, menu):
    order = place(customer, menu)

    intent = start(order)

    assert order.payment_method == "card" and order.status == "pending_payment"
    assert intent.amount == order.total == Decimal("23.00")
    assert intent.metadata["order_id"] == str(order.pk)
    assert start(order).id == intent.id  # asked again: the same intent


def test_billing_never_charges_the_wallet_of_a_card_order(customer, menu):
    order = place(customer, menu)

    assert order_charge(order_id=order.pk) is None

    order.refresh_from_db()
    assert order.status == "pending_payment"
    assert not Payment.objects.filter(order=order).exists()
    assert not Wallet.objects.filter(user=customer).exists()


def test_the_webhook_pays_the_order_once_even_when_delivered_twice(customer, menu):
    order = place(customer, menu)
    intent = start(order)
    payload, signature = SimulatedProvider.signed_event(
        EVENT_SUCCEEDED, dataclasses.replace(intent, status=SUCCEEDED, card_last4="4242")
    )
    post = lambda: Client().post(reverse("payment_webhook"), payload, content_type=JSON, headers={HEADER: signature})  # noqa: E731

    first, again = post(), post()
    other = deliver(EVENT_SUCCEEDED, intent, status=SUCCEEDED, card_last4="4242")  # another event, same intent

    assert first.json()["outcome"] == "order paid"
    assert again.json()["outcome"] == "duplicate"
    assert other.json()["outcome"] == "already paid"
    order.refresh_from_db()
    assert order.status == "paid"
    payment = Payment.objects.get(order=order)
    assert payment.status == "charged" and payment.card_last4 == "4242" and payment.provider_intent_id == intent.id
    assert payment.charge_entry_id is None
    assert not LedgerEntry.objects.filter(wallet__user=customer).exists()
    # The same events a wallet payment writes: the status change, payment.succeeded, the timer.
    assert events_of(order).count("payment.succeeded") == 1
    assert "order.acceptance_timer" in events_of(order)


def test_a_declined_card_fails_the_payment_and_a_later_success_is_refunded_to_the_wallet(customer, menu):
    order = place(customer, menu)
    intent = start(order)

    declined = deliver(EVENT_FAILED, intent, last_error="Your card was declined.", card_last4="0002")

    assert declined.json()["outcome"] == "order payment failed"
    order.refresh_from_db()
    assert order.status == "payment_failed"
    assert Payment.objects.get(order=order).failure_reason == "Your card was declined"
    assert "payment.failed" in events_of(order)

    # The customer pays the same intent with another card after all: never a second payment.
    late = deliver(EVENT_SUCCEEDED, intent, status=SUCCEEDED, card_last4="4242")
    late_again = deliver(EVENT_SUCCEEDED, intent, status=SUCCEEDED, card_last4="4242")

    assert late.json()["outcome"] == "refunded to wallet"
    assert late_again.json()["outcome"] == "already refunded"
    order.refresh_from_db()
    assert order.status == "payment_failed"
    assert Wallet.objects.get(user=customer).balance == order.total
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1
    assert Payment.objects.get(order=order).status == "refunded"


def test_a_payment_after_the_order_was_cancelled_is_refunded_once(customer, menu):
    order = place(customer, menu)
    intent = start(order)
    services.order_cancel(order_id=order.pk, customer=customer)

    first = deliver(EVENT_SUCCEEDED, intent, status=SUCCEEDED, card_last4="4242")
    second = deliver(EVENT_SUCCEEDED, intent, status=SUCCEEDED, card_last4="4242")

    assert first.json()["outcome"] == "refunded to wallet" and second.json()["outcome"] == "already refunded"
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert Wallet.objects.get(user=customer).balance == Decimal("23.00")


def test_an_intent_whose_amount_differs_from_the_order_pays_nothing(customer, menu):
    order = place(customer, menu)
    intent = start(order)

    answer = deliver(EVENT_SUCCEEDED, intent, status=SUCCEEDED, amount=Decimal("1.00"))

    assert answer.json()["outcome"] == "amount mismatch"
    order.refresh_from_db()
    assert order.status == "pending_payment"


def test_a_wallet_order_cannot_be_paid_by_card(customer, menu):
    order = place(customer, menu, method="wallet")
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})

    answer = client.post(f"/api/v1/orders/{order.pk}/card-payment")

    assert answer.status_code == 422 and answer.json()["error"]["code"] == "not_a_card_order"


def test_the_api_places_a_card_order_and_gives_its_confirmation_page(customer, other_customer, menu):
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})
    body = {
        "restaurant_id": menu["pizza"].category.restaurant_id,
        "items": [{"menu_item_id": menu["pizza"].pk, "quantity": 1}],
        "delivery_address": "1 Test Lane",
        "payment_method": "card",
    }

    placed = client.post("/api/v1/orders", json.dumps(body), content_type=JSON)
    order_id = placed.json()["id"]
    pay = client.post(f"/api/v1/orders/{order_id}/card-payment")
    fetched = client.get(f"/api/v1/orders/{order_id}")
    stranger = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=other_customer)}"})

    assert placed.status_code == 201 and placed.json()["payment_method"] == "card"
    assert fetched.json()["payment_method"] == "card"
    assert pay.status_code == 200
    assert pay.json()["amount"] == "11.50" and pay.json()["intent_id"].startswith("pi_sim_")
    assert "/simulated-provider/intents/" in pay.json()["confirmation_url"]
    assert stranger.post(f"/api/v1/orders/{order_id}/card-payment").status_code == 404


def test_the_api_refuses_an_unknown_payment_method_and_changes_nothing(customer, menu):
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})
    body = {
        "restaurant_id": menu["pizza"].category.restaurant_id,
        "items": [{"menu_item_id": menu["pizza"].pk, "quantity": 1}],
        "delivery_address": "1 Test Lane",
        "payment_method": "cheque",
    }

    answer = client.post("/api/v1/orders", json.dumps(body), content_type=JSON)
    default = client.post("/api/v1/orders", json.dumps({**body, "payment_method": "wallet"}), content_type=JSON)

    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request"
    assert default.status_code == 201 and default.json()["payment_method"] == "wallet"
    assert Order.objects.filter(customer=customer).count() == 1


def test_the_site_checkout_by_card_goes_to_the_providers_page_and_back_paid(client, customer, menu):
    # A new customer with no wallet at all: the card pays in one step.
    client.force_login(customer)
    pizza = menu["pizza"]
    add_to_cart(client, pizza)
    page = client.get(reverse("checkout"))
    assert b"Pay by card" in page.content
    token = page.context["checkout_token"]

    placed = client.post(
        reverse("checkout"),
        {
            "checkout_token": token,
            "delivery_address": "1 Test Lane",
            "payment_method": "card",
            "fulfilment": "delivery",
        },
    )
    order = Order.objects.get(customer=customer)
    assert placed.status_code == 302 and placed["Location"] == reverse("order_pay_by_card", args=[order.pk])
    to_provider = client.get(placed["Location"])
    assert "/simulated-provider/intents/" in to_provider["Location"]
    confirmed = client.post(to_provider["Location"], {"card_number": "4242 4242 4242 4242"})

    assert confirmed["Location"].endswith(reverse("order_detail", args=[order.pk]))
    order.refresh_from_db()
    assert order.status == "paid" and order.payment_method == "card"
    assert not Wallet.objects.filter(user=customer).exists()
    detail = client.get(reverse("order_detail", args=[order.pk]))
    assert b"by card ending 4242" in detail.content


def test_the_receipt_names_the_card(customer, menu):
    from billing.receipts import order_receipt

    order = place(customer, menu)
    intent = start(order)
    deliver(EVENT_SUCCEEDED, intent, status=SUCCEEDED, card_last4="4242")
    order.refresh_from_db()

    receipt = order_receipt(user=customer, order_id=order.pk)

    assert receipt.payment_method == "Card ending 4242"


def test_a_card_order_left_waiting_offers_to_pay_and_a_settled_one_does_not(client, customer, menu):
    client.force_login(customer)
    order = place(customer, menu)

    waiting = client.get(reverse("order_detail", args=[order.pk]))
    to_provider = client.post(reverse("order_pay_by_card", args=[order.pk]))
    intent = start(order)
    deliver(EVENT_SUCCEEDED, intent, status=SUCCEEDED, card_last4="4242")
    again = client.post(reverse("order_pay_by_card", args=[order.pk]), follow=True)

    assert b'id="card-pay"' in waiting.content
    assert to_provider["Location"] == intent.confirmation_url
    assert again.redirect_chain[-1][0] == reverse("order_detail", args=[order.pk])
    assert b"no longer waiting for payment" in again.content
    assert b'id="card-pay"' not in again.content


def test_another_customers_order_cannot_be_paid_through_the_site(client, other_customer, customer, menu):
    order = place(customer, menu)
    client.force_login(other_customer)

    assert client.post(reverse("order_pay_by_card", args=[order.pk])).status_code == 404
