"""Top-up limits on the wallet page and in the API: a large amount is confirmed first, the
per-top-up maximum is said once, and a customer's top-ups of one day are capped."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from billing.models import LedgerEntry, TopUp
from billing.services.topups import wallet_top_up
from ordering import services

pytestmark = pytest.mark.django_db
TOKEN_RE = re.compile(r'name="top_up_token" value="([^"]+)"')
GOOD_CARD = "4242424242424242"


def text(response) -> str:
    return " ".join(strip_tags(response.content.decode()).split())


def post_top_up(client: Client, amount: str, **extra: str):
    page = client.get(reverse("wallet")).content.decode()
    token = TOKEN_RE.search(page)
    assert token
    return client.post(reverse("wallet"), {"amount": amount, "top_up_token": token.group(1), **extra})


@pytest.fixture
def topped_up_80_today_and_90_yesterday(customer):
    """80.00 credited today; 90.00 credited yesterday (which does not count for today)."""
    wallet_top_up(user=customer, amount="90.00", card_number=GOOD_CARD)
    LedgerEntry.objects.filter(wallet__user=customer).update(created_at=timezone.now() - datetime.timedelta(days=1))
    wallet_top_up(user=customer, amount="80.00", card_number=GOOD_CARD)


# The confirmation step -------------------------------------------------------------------


def test_a_large_top_up_is_shown_back_to_confirm_before_anything_is_recorded(client, customer):
    client.force_login(customer)
    # when
    response = post_top_up(client, "750.00")
    # then the page asks, and nothing is recorded yet
    assert response.status_code == 200
    assert "Add €750.00 to your wallet?" in text(response)
    assert 'name="confirmed" value="true"' in response.content.decode()
    assert not TopUp.objects.exists()
    # when they confirm (the confirmation form posts the same token back), twice
    token = re.search(r'name="top_up_token" value="([^"]+)"', response.content.decode())
    assert token
    confirmed = {"amount": "750.00", "top_up_token": token.group(1), "confirmed": "true"}
    first = client.post(reverse("wallet"), confirmed)
    again = client.post(reverse("wallet"), confirmed)
    # then one top-up is on its way to the provider
    assert first.status_code == 302 and first["Location"].startswith("/wallet/top-ups/")
    assert again["Location"] == first["Location"]
    assert list(TopUp.objects.values_list("amount", "status")) == [(Decimal("750.00"), TopUp.Status.PENDING)]


def test_a_top_up_up_to_the_threshold_goes_straight_on(client, customer, settings):
    client.force_login(customer)
    response = post_top_up(client, f"{settings.TOP_UP_CONFIRM_ABOVE:.2f}")
    assert response.status_code == 302 and response["Location"].startswith("/wallet/top-ups/")


def test_changing_the_amount_goes_back_to_the_form_with_it(client, customer):
    client.force_login(customer)
    response = post_top_up(client, "750.00", next="/orders/1/")
    change = re.search(r'href="([^"]+)">Change the amount', response.content.decode())
    assert change
    form = client.get(change.group(1).replace("&amp;", "&"))
    assert 'value="750.00"' in form.content.decode() and 'name="next" value="/orders/1/"' in form.content.decode()


# The per-top-up maximum ------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["10000.01", "100000", "9" * 40])
def test_the_per_top_up_maximum_is_said_once(client, customer, amount):
    client.force_login(customer)
    response = post_top_up(client, amount)
    assert response.status_code == 400
    assert text(response).count("At most €10,000.00 at a time.") == 1
    assert not TopUp.objects.exists()


# The daily cap ---------------------------------------------------------------------------


def test_the_daily_cap_counts_todays_ledger_and_refuses_on_the_form(
    client, customer, settings, topped_up_80_today_and_90_yesterday
):
    # given a cap of 100.00 a day, 80.00 of it used today
    settings.TOP_UP_DAILY_LIMIT = Decimal("100.00")
    client.force_login(customer)
    # when
    refused = post_top_up(client, "20.01")
    allowed = post_top_up(client, "20.00")
    # then
    assert refused.status_code == 400
    assert text(refused).count("You can top up at most €100.00 a day. €20.00 is left today.") == 1
    assert refused.context["form"].errors["amount"]
    assert allowed.status_code == 302
    assert TopUp.objects.filter(status=TopUp.Status.PENDING).count() == 1


def test_a_large_top_up_over_the_cap_is_refused_without_a_confirmation_step(client, customer, settings):
    settings.TOP_UP_DAILY_LIMIT = Decimal("600.00")
    client.force_login(customer)
    response = post_top_up(client, "750.00")
    assert response.status_code == 400
    assert "You can top up at most €600.00 a day. €600.00 is left today." in text(response)
    assert "to your wallet?" not in text(response)


def test_the_daily_cap_in_the_api_is_a_422_in_the_contracts_shape(
    customer, settings, topped_up_80_today_and_90_yesterday
):
    # given
    settings.TOP_UP_DAILY_LIMIT = Decimal("100.00")
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})
    before = (LedgerEntry.objects.count(), TopUp.objects.count())
    # when by test card and by payment intent
    card = client.post(
        "/api/v1/wallet/top-up", {"amount": "30.00", "card_number": GOOD_CARD}, content_type="application/json"
    )
    intent = client.post("/api/v1/wallet/top-ups", {"amount": "30.00"}, content_type="application/json")
    # then
    for response in (card, intent):
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "top_up_daily_limit"
        assert error["message"] == "You can top up at most €100.00 a day. €20.00 is left today."
        assert error["field"] == "amount"
        assert error["details"] == {"limit": "100.00", "remaining": "20.00"}
    assert (LedgerEntry.objects.count(), TopUp.objects.count()) == before
    # and what is left still goes through
    ok = client.post(
        "/api/v1/wallet/top-up", {"amount": "20.00", "card_number": GOOD_CARD}, content_type="application/json"
    )
    assert ok.status_code == 200 and ok.json()["balance"] == "190.00"
