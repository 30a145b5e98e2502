"""The wallet on the customer site: the wallet page and its top-up form (through the simulated
provider's confirmation page), the header's balance, the checkout's low-balance notice and the
order page's payment facts."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from billing.models import LedgerEntry, Payment, TopUp, Wallet
from billing.services.topups import wallet_top_up
from billing.services.wallets import wallet_debit
from ordering.models import Order
from ordering.status import OrderStatus
from tests.factories import OrderFactory, prepare_requested_top_ups
from tests.integration.site_helpers import add_to_cart

pytestmark = pytest.mark.django_db
TOKEN_RE = re.compile(r'name="top_up_token" value="([^"]+)"')
GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


def text(response) -> str:
    """The page's text as a reader sees it: no tags, single spaces."""
    return " ".join(strip_tags(response.content.decode()).split())


def top_up_token(client) -> str:
    response = client.get(reverse("wallet"))
    assert response.status_code == 200
    match = TOKEN_RE.search(response.content.decode())
    assert match, "the top-up form carries a top_up_token"
    return match.group(1)


def start_top_up(client, amount: str, **extra: str):
    """Submit the wallet's form; once the billing worker has the provider's page, the waiting
    page sends the browser there (a form error: the form's answer)."""
    posted = client.post(reverse("wallet"), {"amount": amount, "top_up_token": top_up_token(client), **extra})
    return through_waiting_page(client, posted)


def through_waiting_page(client, posted):
    """The form's answer sends the browser to the waiting page; the billing worker asks the
    provider for the intent; the waiting page then sends the browser on."""
    if posted.status_code != 302:
        return posted
    assert posted["Location"].startswith("/wallet/top-ups/"), posted["Location"]
    prepare_requested_top_ups()
    return client.get(posted["Location"])


def pay(client, started, card: str):
    """On the provider's page the started top-up sent the browser to, pay with ``card``; the
    browser is sent back to the wallet (followed)."""
    assert started.status_code == 302, started.content
    confirmation = started["Location"]
    assert "/simulated-provider/" in confirmation
    assert client.get(confirmation).status_code == 200
    return client.post(confirmation, {"card_number": card}, follow=True)


def ledger_count(user) -> int:
    return LedgerEntry.objects.filter(wallet__user=user).count()


def balance(user) -> Decimal | None:
    wallet = Wallet.objects.filter(user=user).first()
    return wallet.balance if wallet else None


# The wallet page -------------------------------------------------------------------------


def test_the_wallet_page_needs_a_login(client):
    response = client.get(reverse("wallet"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_new_wallet_shows_zero_and_an_empty_history(client, customer):
    client.force_login(customer)

    response = client.get(reverse("wallet"))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="wallet-balance"' in html and "€0.00" in text(response)
    assert "Nothing here yet" in text(response)
    # the form: an amount and the hidden token; the card is entered on the provider's page
    assert 'name="amount"' in html
    assert 'name="card_number"' not in html
    assert 'name="top_up_token" value="' in html
    assert "Continue to payment" in html


def test_the_wallet_page_shows_the_balance_and_the_history_newest_first(client, customer, menu):
    # given a top-up and an order paid from the wallet
    wallet_top_up(user=customer, amount="30.00", card_number=GOOD_CARD)
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    wallet_debit(
        user_id=customer.pk,
        amount=order.total,
        kind=LedgerEntry.Kind.CHARGE,
        key=f"order:{order.pk}:charge",
        description=f"Order #{order.pk} at Casa Test",
        order_id=order.pk,
    )
    client.force_login(customer)

    # when
    response = client.get(reverse("wallet"))

    # then
    page = text(response)
    html = response.content.decode()
    assert 'data-wallet-balance="18.50"' in html
    assert page.index(f"Order #{order.pk} at Casa Test") < page.index("Top-up by card ending 4242")
    assert "−€11.50" in page and "+€30.00" in page
    assert "Balance €18.50" in page and "Balance €30.00" in page
    assert 'class="ledger-amount is-debit"' in html and 'class="ledger-amount is-credit"' in html
    assert reverse("order_detail", args=[order.pk]) in html


def test_the_form_tops_up_the_wallet(client, customer):
    # given
    client.force_login(customer)

    # when the form is sent and the card confirmed on the provider's page
    started = start_top_up(client, "25.50")
    response = pay(client, started, GOOD_CARD)

    # then the browser is back on the wallet, which was credited
    top_up = TopUp.objects.get(user=customer)
    assert [url for url, _ in response.redirect_chain] == [
        f"http://testserver{reverse('wallet')}?top_up={top_up.pk}",
        reverse("wallet"),
    ]
    assert top_up.status == TopUp.Status.SUCCEEDED and top_up.card_last4 == "4242"
    assert balance(customer) == Decimal("25.50")
    assert ledger_count(customer) == 1
    page = text(response)
    assert "Added €25.50 to your wallet" in page
    assert "Top-up by card ending 4242" in page and "+€25.50" in page


def test_a_double_submitted_form_tops_up_once(client, customer):
    # given one rendered form, submitted twice
    client.force_login(customer)
    data = {"amount": "10.00", "top_up_token": top_up_token(client)}

    # when
    first = client.post(reverse("wallet"), data)
    second = client.post(reverse("wallet"), data)
    pay(client, through_waiting_page(client, first), GOOD_CARD)
    third = through_waiting_page(client, client.post(reverse("wallet"), data))

    # then both went to the one payment, which credited once; once paid the form shows the wallet
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert third["Location"].startswith(reverse("wallet") + "?top_up=")
    assert balance(customer) == Decimal("10.00")
    assert ledger_count(customer) == 1
    assert TopUp.objects.filter(user=customer).count() == 1


def test_a_declined_card_shows_the_error_and_changes_nothing(client, customer):
    # given a wallet with 5.00
    wallet_top_up(user=customer, amount="5.00", card_number=GOOD_CARD)
    client.force_login(customer)

    # when
    response = pay(client, start_top_up(client, "40.00"), DECLINED_CARD)

    # then
    assert response.status_code == 200
    assert "Your card was declined." in text(response)
    assert 'role="alert"' in response.content.decode()
    assert balance(customer) == Decimal("5.00")
    assert ledger_count(customer) == 1
    assert TopUp.objects.get(user=customer, amount=Decimal("40.00")).status == TopUp.Status.DECLINED


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "Enter the amount to add."),
        ("0", "Enter an amount of more than zero."),
        ("12.345", "Use at most two decimals"),
        ("10000.01", "At most €10,000.00 at a time."),
        ("abc", "Enter an amount such as 20 or 12.50."),
    ],
)
def test_a_bad_amount_shows_a_field_error_and_writes_nothing(client, customer, amount, message):
    client.force_login(customer)

    response = start_top_up(client, amount)

    assert response.status_code == 400
    assert message in text(response)
    assert response.context["form"].errors["amount"]
    assert not TopUp.objects.exists() and not LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("", "Enter your card number."),
        ("4242 4242 4242 4241", "That card number is not valid"),
        ("1234", "Enter a card number of 12 to 19 digits."),
    ],
)
def test_a_bad_card_number_is_a_field_error_on_the_providers_page(client, customer, card, message):
    client.force_login(customer)
    confirmation = start_top_up(client, "20.00")["Location"]

    response = client.post(confirmation, {"card_number": card})

    assert response.status_code == 400
    assert message in text(response)
    assert response.context["form"].errors["card_number"]
    assert TopUp.objects.get(user=customer).status == TopUp.Status.PENDING
    assert not LedgerEntry.objects.exists()


def test_an_expired_form_token_is_refused(client, customer):
    client.force_login(customer)

    response = client.post(reverse("wallet"), {"amount": "20.00", "top_up_token": "x"})

    assert response.status_code == 400
    assert "This form has expired" in text(response)
    assert not TopUp.objects.exists()


def test_a_top_up_from_checkout_returns_to_checkout(client, customer, menu):
    client.force_login(customer)
    add_to_cart(client, menu["pizza"])

    response = pay(client, start_top_up(client, "11.50", next=reverse("checkout")), GOOD_CARD)

    assert response.redirect_chain[-1][0] == reverse("checkout")
    assert balance(customer) == Decimal("11.50")


def test_an_outside_next_url_is_ignored(client, customer):
    client.force_login(customer)

    response = pay(client, start_top_up(client, "1.00", next="https://evil.example/"), GOOD_CARD)

    assert response.redirect_chain[-1][0] == reverse("wallet")
    assert "evil.example" not in response.redirect_chain[0][0]


# The header ------------------------------------------------------------------------------


def test_the_header_shows_the_wallet_balance_when_logged_in(client, customer, restaurant):
    anonymous = client.get(reverse("restaurant_list")).content.decode()
    wallet_top_up(user=customer, amount="12.00", card_number=GOOD_CARD)
    client.force_login(customer)

    page = client.get(reverse("restaurant_list")).content.decode()

    assert reverse("wallet") not in anonymous
    assert f'href="{reverse("wallet")}"' in page
    assert re.search(r'id="nav-wallet-balance">€12.00<', page)


# Checkout --------------------------------------------------------------------------------


def test_checkout_shows_the_balance_and_a_notice_when_it_is_too_low(client, customer, menu):
    # given 5.00 in the wallet and a 23.00 cart
    wallet_top_up(user=customer, amount="5.00", card_number=GOOD_CARD)
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 2)

    # when
    response = client.get(reverse("checkout"))

    # then the notice links to a top-up of the shortfall, and checkout is still possible
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="checkout-wallet-balance">€5.00<' in html
    assert 'id="wallet-low-notice"' in html
    assert "€18.00 less than this order" in text(response)
    assert f'href="{reverse("wallet")}?next={reverse("checkout")}&amp;amount=18.00"' in html
    assert "Place order" in html


def test_checkout_shows_no_notice_when_the_wallet_covers_the_total(client, customer, menu):
    wallet_top_up(user=customer, amount="23.00", card_number=GOOD_CARD)
    client.force_login(customer)
    add_to_cart(client, menu["pizza"], 2)

    html = client.get(reverse("checkout")).content.decode()

    assert 'id="checkout-wallet-balance">€23.00<' in html
    assert 'id="wallet-low-notice"' not in html


def test_the_top_up_link_from_checkout_prefills_the_shortfall(client, customer):
    client.force_login(customer)

    response = client.get(reverse("wallet"), {"next": reverse("checkout"), "amount": "18.00"})

    html = response.content.decode()
    assert re.search(r'<input[^>]*name="amount"[^>]*value="18.00"', html)
    assert f'name="next" value="{reverse("checkout")}"' in html
    assert "Back to checkout" in html


# The order page --------------------------------------------------------------------------


def paid(customer, order) -> Payment:
    wallet = Wallet.objects.create(user=customer, currency="EUR", balance=Decimal("0.00"))
    LedgerEntry.objects.create(
        wallet=wallet,
        kind="top_up",
        amount=Decimal("50.00"),
        balance_after=Decimal("50.00"),
        idempotency_key="t",
        description="Top-up",
    )
    charge = LedgerEntry.objects.create(
        wallet=wallet,
        kind="charge",
        amount=-order.total,
        balance_after=Decimal("50.00") - order.total,
        idempotency_key="c",
        description=f"Order #{order.pk} at Casa Test",
        order_id=order.pk,
    )
    return Payment.objects.create(order=order, amount=order.total, status=Payment.Status.CHARGED, charge_entry=charge)


def test_the_order_page_of_an_unpaid_order_has_no_payment_section(client, customer, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    client.force_login(customer)

    response = client.get(reverse("order_detail", args=[order.pk]))

    assert response.status_code == 200
    assert 'id="order-payment"' not in response.content.decode()


def test_the_order_page_shows_the_payment(client, customer, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    paid(customer, order)
    client.force_login(customer)

    response = client.get(reverse("order_detail", args=[order.pk]))

    html = response.content.decode()
    assert 'data-payment-status="charged"' in html
    assert "Paid €11.50 from your wallet" in text(response)
    assert "Refunded" not in text(response)
    # the hooks the live page relies on are still there
    assert f'data-order-id="{order.pk}"' in html and 'id="order-status"' in html and "data-timeline" in html


def test_the_order_page_shows_a_refund(client, customer, menu):
    # given a paid order refunded after the kitchen rejected it
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    payment = paid(customer, order)
    wallet = Wallet.objects.get(user=customer)
    refund = LedgerEntry.objects.create(
        wallet=wallet,
        kind="refund",
        amount=order.total,
        balance_after=Decimal("50.00"),
        idempotency_key="r",
        description=f"Order #{order.pk} — refund: rejected by the kitchen",
        order_id=order.pk,
    )
    refunded_at = datetime.datetime(2025, 3, 14, 12, 30, tzinfo=datetime.UTC)
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.REFUNDED,
        refund_entry=refund,
        refund_reason="rejected by the kitchen",
        refunded_at=refunded_at,
    )
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.REJECTED)
    client.force_login(customer)

    # when
    response = client.get(reverse("order_detail", args=[order.pk]))

    # then
    page = text(response)
    assert 'data-payment-status="refunded"' in response.content.decode()
    assert "Paid €11.50 from your wallet" in page
    assert "Refunded €11.50 to your wallet on 14 Mar 2025, 12:30 (rejected by the kitchen)" in page
    # and the refund is a step of the order's timeline, after the rejection
    assert 'data-kind="refund"' in response.content.decode()
    # and the wallet's history tells the same story
    history = text(client.get(reverse("wallet")))
    assert f"Order #{order.pk} — refund: rejected by the kitchen" in history and "+€11.50" in history


def test_the_order_page_shows_a_failed_payment(client, customer, menu):
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    Payment.objects.create(
        order=order, amount=order.total, status=Payment.Status.FAILED, failure_reason="Not enough money in the wallet"
    )
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAYMENT_FAILED)
    client.force_login(customer)

    response = client.get(reverse("order_detail", args=[order.pk]))

    assert 'data-payment-status="failed"' in response.content.decode()
    assert "Payment failed: Not enough money in the wallet." in text(response)
    assert f'href="{reverse("wallet")}"' in response.content.decode()
