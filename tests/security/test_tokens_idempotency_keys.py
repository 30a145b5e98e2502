"""Idempotency keys are compared byte for byte (binary collation): a client's keys that differ
only in case or accents are different keys, never a replay of another order."""

from __future__ import annotations

import pytest
from django.test import Client

from ordering.models import Order
from ordering.services import api_token_issue

pytestmark = pytest.mark.django_db
JSON = "application/json"


@pytest.mark.parametrize(("first", "second"), [("order-Key-1", "order-key-1"), ("clé-1", "cle-1"), ("k", "k ")])
def test_keys_differing_only_in_case_accents_or_trailing_space_are_two_orders(customer, menu, first, second):
    client = Client(headers={"Authorization": f"Bearer {api_token_issue(user=customer)}"})
    body = {
        "restaurant_id": menu["pizza"].category.restaurant_id,
        "items": [{"menu_item_id": menu["pizza"].pk, "quantity": 1}],
        "delivery_address": "12 Baker Street",
    }

    one = client.post("/api/v1/orders", body, content_type=JSON, headers={"Idempotency-Key": first})
    two = client.post("/api/v1/orders", body, content_type=JSON, headers={"Idempotency-Key": second})
    replay = client.post("/api/v1/orders", body, content_type=JSON, headers={"Idempotency-Key": first})

    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]
    assert "Idempotent-Replayed" not in two.headers
    assert replay.json()["id"] == one.json()["id"] and replay.headers["Idempotent-Replayed"] == "true"
    stored = Order.objects.filter(customer=customer).values_list("idempotency_key", flat=True)
    assert sorted(str(key) for key in stored) == sorted([first, second])
