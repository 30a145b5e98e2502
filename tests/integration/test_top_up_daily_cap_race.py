"""The daily top-up cap counts top-ups still waiting on the provider, and holds when top-ups
race: each is decided under the wallet's row lock (real MariaDB, one connection per thread)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from billing.exceptions import DailyTopUpLimit
from billing.models import LedgerEntry, TopUp
from billing.services.topups import top_up_start, wallet_top_up
from ordering import services

GOOD_CARD = "4242424242424242"
RACERS = 6


def _return_url(top_up_id: int) -> str:
    return f"http://testserver/wallet/top-ups/{top_up_id}/"


def race(attempt) -> list[str]:
    """Run ``attempt()`` in RACERS threads released at once; what each ended in."""
    barrier = threading.Barrier(RACERS)

    def run(_: int) -> str:
        try:
            barrier.wait(timeout=10)
            attempt()
            return "ok"
        except DailyTopUpLimit:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        return sorted(pool.map(run, range(RACERS)))


@pytest.mark.django_db(transaction=True)
def test_racing_intent_top_ups_never_pass_the_cap_together(customer, settings):
    # given a cap of 100.00 and nothing topped up today
    settings.TOP_UP_DAILY_LIMIT = Decimal("100.00")

    # when six top-ups of 30.00 are started at the same moment
    outcomes = race(lambda: top_up_start(user=customer, amount="30.00", idempotency_key=None, return_url=_return_url))

    # then three fit under the cap and the other three are refused: never 120.00 or more
    assert outcomes == ["ok"] * 3 + ["refused"] * 3
    pending = TopUp.objects.filter(user=customer, status=TopUp.Status.PENDING)
    assert pending.count() == 3 and sum(t.amount for t in pending) == Decimal("90.00")


@pytest.mark.django_db(transaction=True)
def test_racing_card_top_ups_never_credit_past_the_cap(customer, settings):
    settings.TOP_UP_DAILY_LIMIT = Decimal("100.00")

    outcomes = race(lambda: wallet_top_up(user=customer, amount="40.00", card_number=GOOD_CARD))

    assert outcomes == ["ok"] * 2 + ["refused"] * 4
    credited = LedgerEntry.objects.filter(wallet__user=customer, kind=LedgerEntry.Kind.TOP_UP)
    assert sum(e.amount for e in credited) == Decimal("80.00")


@pytest.mark.django_db(transaction=True)
def test_racing_retries_of_one_key_make_one_top_up_and_are_not_refused(customer, settings):
    # given a cap that one top-up fills
    settings.TOP_UP_DAILY_LIMIT = Decimal("50.00")

    # when the same request is sent six times at once, with one Idempotency-Key
    outcomes = race(
        lambda: top_up_start(user=customer, amount="50.00", idempotency_key="same-key", return_url=_return_url)
    )

    # then every copy gets the one top-up: a copy that waited is a replay, not over the cap
    assert outcomes == ["ok"] * RACERS
    assert TopUp.objects.filter(user=customer).count() == 1


@pytest.mark.django_db
def test_pending_top_ups_of_the_day_count_and_declined_ones_do_not(customer, settings):
    # given a cap of 100.00, 70.00 waiting on the provider and 50.00 declined
    settings.TOP_UP_DAILY_LIMIT = Decimal("100.00")
    top_up_start(user=customer, amount="70.00", idempotency_key=None, return_url=_return_url)
    declined = top_up_start(user=customer, amount="20.00", idempotency_key=None, return_url=_return_url)
    TopUp.objects.filter(pk=declined.pk).update(status=TopUp.Status.DECLINED)
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})

    # when 30.01 more is asked for, then 30.00
    refused = client.post("/api/v1/wallet/top-ups", {"amount": "30.01"}, content_type="application/json")
    allowed = client.post("/api/v1/wallet/top-ups", {"amount": "30.00"}, content_type="application/json")

    # then the pending 70.00 counted, the declined 20.00 did not
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "top_up_daily_limit"
    assert refused.json()["error"]["details"] == {"limit": "100.00", "remaining": "30.00"}
    assert allowed.status_code in (200, 201, 202), allowed.content
    assert TopUp.objects.filter(user=customer, status=TopUp.Status.PENDING).count() == 2
