"""The wallet through the API: balance, card top-ups, declines, bad input and idempotency,
on the real MariaDB."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from billing.models import LedgerEntry, TopUp, Wallet
from ordering import services

pytestmark = pytest.mark.django_db
JSON = "application/json"
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


def bearer(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=user)}"})


def top_up(client: Client, amount: object = "20.00", card_number: object = GOOD_CARD, **headers: str):
    return client.post(
        "/api/v1/wallet/top-up", {"amount": amount, "card_number": card_number}, content_type=JSON, headers=headers
    )


def money_state(user) -> tuple:
    """What a refused request must leave untouched."""
    wallet = Wallet.objects.filter(user=user).first()
    return (
        wallet.balance if wallet else None,
        LedgerEntry.objects.filter(wallet__user=user).count(),
        TopUp.objects.filter(user=user, status=TopUp.Status.SUCCEEDED).count(),
    )


def test_a_new_customer_has_a_balance_of_zero(customer):
    response = bearer(customer).get("/api/v1/wallet")

    assert response.status_code == 200
    assert response.json() == {"balance": "0.00", "currency": "EUR"}


def test_a_top_up_with_a_good_card_raises_the_balance_and_writes_one_ledger_entry(customer):
    client = bearer(customer)

    # when the customer tops up twice
    first = top_up(client, "20.00")
    second = top_up(client, "5.5", "4242 4242 4242 4242")

    # then both answer with the new balance, money as strings
    assert first.status_code == 200, first.content
    assert first.json()["balance"] == "20.00" and first.json()["currency"] == "EUR"
    body = second.json()
    assert second.status_code == 200, second.content
    assert (body["balance"], body["amount"], body["card_last4"]) == ("25.50", "5.50", "4242")
    assert "Idempotent-Replayed" not in second.headers
    # and the ledger has one entry per top-up, tied to it
    entries = list(LedgerEntry.objects.filter(wallet__user=customer).order_by("id"))
    assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
        ("top_up", Decimal("20.00"), Decimal("20.00")),
        ("top_up", Decimal("5.50"), Decimal("25.50")),
    ]
    assert body["ledger_entry_id"] == entries[1].pk and entries[1].top_up_id == body["top_up_id"]
    assert client.get("/api/v1/wallet").json() == {"balance": "25.50", "currency": "EUR"}


def test_a_declined_card_is_402_and_moves_no_money(customer):
    # given a wallet with some money
    client = bearer(customer)
    top_up(client, "10.00")
    before = money_state(customer)

    # when a top-up is made with the declined test card
    response = top_up(client, "50.00", DECLINED_CARD)

    # then
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "card_declined"
    assert error["message"] == "Your card was declined."
    assert money_state(customer) == before
    assert TopUp.objects.get(user=customer, amount=Decimal("50.00")).status == TopUp.Status.DECLINED


@pytest.mark.parametrize(
    "card_number", ["4242424242424241", "1234", "4242-abcd-4242-4242", "", "4" * 20, 4242424242424242]
)
def test_an_invalid_card_number_is_422_invalid_card(customer, card_number):
    response = top_up(bearer(customer), "20.00", card_number)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "invalid_card"
    assert money_state(customer) == (None, 0, 0)
    assert not TopUp.objects.exists()


@pytest.mark.parametrize(
    "amount",
    [
        "0",
        "0.00",
        "-5.00",
        "12.345",
        "10000.01",
        "99999999999999999999",
        "abc",
        "",
        " 12.00",
        "1e3",
        "NaN",
        "Infinity",
        "12,50",
        12.5,
        12,
        True,
        None,
        ["12.00"],
        {"value": "12.00"},
    ],
)
def test_bad_amounts_are_422_invalid_amount_and_write_nothing(customer, amount):
    response = top_up(bearer(customer), amount)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "invalid_amount"
    assert money_state(customer) == (None, 0, 0)
    assert not TopUp.objects.exists()


def test_the_largest_and_smallest_amounts_are_accepted(customer, settings):
    # The per-top-up maximum, not the daily cap (test_wallet_top_up_limits.py), is tested here.
    settings.TOP_UP_DAILY_LIMIT = Decimal("20000.00")
    client = bearer(customer)

    assert top_up(client, "10000.00").status_code == 200
    assert top_up(client, "0.01").json()["balance"] == "10000.01"


def test_a_body_that_misses_fields_is_422(customer):
    response = bearer(customer).post("/api/v1/wallet/top-up", {"amount": "20.00"}, content_type=JSON)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["field"] == "card_number"


def test_the_same_idempotency_key_and_body_replays_the_first_answer(customer):
    client = bearer(customer)

    # when the same request is sent three times under one key, with another top-up in between
    first = top_up(client, "20.00", **{"Idempotency-Key": "key-1"})
    top_up(client, "1.00")
    again = top_up(client, "20.00", "4242 4242 4242 4242", **{"Idempotency-Key": "key-1"})
    third = top_up(client, "20.00", **{"Idempotency-Key": "key-1"})

    # then the card is charged and the wallet credited once; the replay shows the balance as it is now
    assert first.status_code == again.status_code == third.status_code == 200
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == third.headers["Idempotent-Replayed"] == "true"
    assert again.json()["top_up_id"] == first.json()["top_up_id"]
    assert again.json()["ledger_entry_id"] == first.json()["ledger_entry_id"]
    assert again.json()["balance"] == "21.00"
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 2
    assert TopUp.objects.filter(user=customer).count() == 2


def test_the_same_idempotency_key_with_another_body_is_409(customer):
    client = bearer(customer)
    top_up(client, "20.00", **{"Idempotency-Key": "key-1"})
    before = money_state(customer)

    other_amount = top_up(client, "25.00", **{"Idempotency-Key": "key-1"})
    other_card = top_up(client, "20.00", "5555555555554444", **{"Idempotency-Key": "key-1"})

    for response in (other_amount, other_card):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_conflict"
    assert money_state(customer) == before


def test_a_replayed_declined_top_up_is_declined_again(customer):
    client = bearer(customer)

    first = top_up(client, "20.00", DECLINED_CARD, **{"Idempotency-Key": "key-d"})
    again = top_up(client, "20.00", DECLINED_CARD, **{"Idempotency-Key": "key-d"})

    assert first.status_code == again.status_code == 402
    assert again.json()["error"]["code"] == "card_declined"
    assert TopUp.objects.filter(user=customer).count() == 1
    assert money_state(customer) == (None, 0, 0)


def test_idempotency_keys_belong_to_each_customer(customer, other_customer):
    mine = top_up(bearer(customer), "20.00", **{"Idempotency-Key": "shared"})
    theirs = top_up(bearer(other_customer), "30.00", **{"Idempotency-Key": "shared"})

    assert mine.status_code == theirs.status_code == 200
    assert (mine.json()["balance"], theirs.json()["balance"]) == ("20.00", "30.00")


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_a_bad_idempotency_key_is_422(customer, key):
    response = top_up(bearer(customer), **{"Idempotency-Key": key})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not TopUp.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_top_ups_with_one_idempotency_key_credit_once(customer):
    # given one customer whose client sends the same top-up four times at once
    token = services.api_token_issue(user=customer)
    barrier = threading.Barrier(4)

    def send():
        try:
            client = Client(headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same-key"})
            barrier.wait(timeout=10)
            return top_up(client, "15.00")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: send(), range(4)))

    # then every answer is the one top-up, and the wallet was credited once
    assert [a.status_code for a in answers] == [200] * 4, [a.content for a in answers]
    assert len({a.json()["top_up_id"] for a in answers}) == 1
    assert {a.json()["balance"] for a in answers} == {"15.00"}
    assert TopUp.objects.filter(user=customer).count() == 1
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1
    assert Wallet.objects.get(user=customer).balance == Decimal("15.00")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-real-token"}], ids=["missing", "unknown"])
def test_the_wallet_needs_authentication(headers, customer):
    client = Client(headers=headers)

    answers = [client.get("/api/v1/wallet"), top_up(client)]

    for response in answers:
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
    assert not TopUp.objects.exists()


def test_a_session_top_up_needs_the_csrf_token(customer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)

    response = top_up(client)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert not TopUp.objects.exists()


def test_the_openapi_document_describes_the_wallet():
    schema = Client().get("/api/v1/openapi.json").json()

    get = schema["paths"]["/api/v1/wallet"]["get"]
    post = schema["paths"]["/api/v1/wallet/top-up"]["post"]
    assert {"200", "401"} <= set(get["responses"])
    assert {"200", "401", "402", "409", "422"} <= set(post["responses"])
    assert post["responses"]["402"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    body = schema["components"]["schemas"]["TopUpIn"]
    assert body["properties"]["amount"]["type"] == "string"
    assert body["properties"]["card_number"]["type"] == "string"
    assert set(body["required"]) == {"amount", "card_number"}
    assert schema["components"]["schemas"]["WalletOut"]["properties"]["balance"]["type"] == "string"
