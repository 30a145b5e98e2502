"""Concurrent API requests against the real MariaDB: stock is never oversold and an
idempotency key never creates two orders."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from ordering import services
from ordering.models import MenuItem, Order
from tests.factories import UserFactory

JSON = "application/json"


def post_concurrently(requests: list[tuple[str, dict, dict]]) -> list:
    """POST every (token, body, headers) at once from its own thread; the answers in order."""
    barrier = threading.Barrier(len(requests))

    def post(token: str, body: dict, headers: dict):
        try:
            client = Client(headers={"Authorization": f"Bearer {token}", **headers})
            barrier.wait(timeout=10)
            return client.post("/api/v1/orders", body, content_type=JSON)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(lambda args: post(*args), requests))


@pytest.mark.django_db(transaction=True)
def test_stock_is_never_oversold_by_concurrent_orders(restaurant, menu):
    # given a soup with 5 left and 8 customers who each want one
    body = {
        "restaurant_id": restaurant.pk,
        "items": [{"menu_item_id": menu["soup"].pk, "quantity": 1}],
        "delivery_address": "1 Lane",
    }
    tokens = [services.api_token_issue(user=UserFactory()) for _ in range(8)]

    # when they all order at the same moment
    answers = post_concurrently([(token, body, {}) for token in tokens])

    # then exactly five get the soup and the others are told it is sold out
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 5 + [422] * 3, [a.content for a in answers]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 422} == {"out_of_stock"}
    assert Order.objects.count() == 5
    assert MenuItem.objects.get(pk=menu["soup"].pk).stock_remaining == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("dish", ["soup", "pizza"], ids=["with stock", "without stock"])
def test_concurrent_retries_with_one_idempotency_key_make_one_order(customer, restaurant, menu, dish):
    # given one customer whose client sends the same request several times at once
    body = {
        "restaurant_id": restaurant.pk,
        "items": [{"menu_item_id": menu[dish].pk, "quantity": 1}],
        "delivery_address": "1 Lane",
    }
    token = services.api_token_issue(user=customer)

    answers = post_concurrently([(token, body, {"Idempotency-Key": "same-key"})] * 4)

    # then all of them get the one order
    assert [a.status_code for a in answers] == [201] * 4, [a.content for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert Order.objects.filter(customer=customer).count() == 1
    assert sum(1 for a in answers if a.headers.get("Idempotent-Replayed") == "true") == 3
    if dish == "soup":
        assert MenuItem.objects.get(pk=menu["soup"].pk).stock_remaining == 4
