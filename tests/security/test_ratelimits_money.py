"""Top-ups are limited per account, and the API and the site's wallet form share the allowance:
a client cannot get more attempts at moving money by switching from one to the other."""

from __future__ import annotations

import pytest
from django.test import Client

from billing.models import TopUp
from ordering.services import api_token_issue
from tests.security.test_ratelimits import assert_rate_limited, fresh_limits, rates  # noqa: F401

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_top_ups_share_one_allowance_between_the_api_and_the_site(settings, customer, password) -> None:
    rates(settings, money="3/m")
    api = Client(headers={"Authorization": f"Bearer {api_token_issue(user=customer)}"})
    site = Client()
    site.force_login(customer)

    # two through the API (a card top-up and an intent), one on the site's wallet form
    card = {"amount": "5.00", "card_number": "4242424242424242"}
    assert api.post("/api/v1/wallet/top-up", card, content_type=JSON).status_code == 200
    assert api.post("/api/v1/wallet/top-ups", {"amount": "5.00"}, content_type=JSON).status_code == 202
    page = site.get("/wallet/")
    token = page.context["top_up_token"]
    assert site.post("/wallet/", {"amount": "5.00", "top_up_token": token}).status_code == 302
    made = TopUp.objects.filter(user=customer).count()

    # then the fourth, from either side, is refused and creates nothing
    assert_rate_limited(api.post("/api/v1/wallet/top-ups", {"amount": "5.00"}, content_type=JSON))
    refused = site.post("/wallet/", {"amount": "5.00", "top_up_token": site.get("/wallet/").context["top_up_token"]})
    assert refused.status_code == 429
    assert "Too many attempts" in refused.content.decode()
    assert TopUp.objects.filter(user=customer).count() == made
