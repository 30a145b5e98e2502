"""Operators list, inspect, replay and discard dead letters in the admin."""

import json

import pytest
from django.contrib.auth import get_user_model

from bus.models import DeadLetter, OutboxMessage


@pytest.fixture
def operator_client(client, db):
    admin = get_user_model().objects.create_superuser("operator", "op@example.com", "pw-operator-1")
    client.force_login(admin)
    return client


@pytest.fixture
def letter(db):
    body = {"message_id": "m-1", "type": "order.placed", "payload": {"order_id": 42}}
    return DeadLetter.objects.create(
        message_id="m-1",
        queue="billing.order_placed",
        type="order.placed",
        reason="permanent: card exploded",
        attempts=4,
        correlation_id="corr-1",
        body=json.dumps(body),
    )


def test_the_list_shows_queue_reason_and_attempts(operator_client, letter):
    page = operator_client.get("/admin/bus/deadletter/").content.decode()
    assert "billing.order_placed" in page and "card exploded" in page and ">4<" in page


def test_the_detail_shows_the_payload(operator_client, letter):
    page = operator_client.get(f"/admin/bus/deadletter/{letter.pk}/change/").content.decode()
    assert "&quot;order_id&quot;: 42" in page


def test_replay_sends_it_back_to_its_queue_through_the_outbox(operator_client, letter):
    response = operator_client.post(
        "/admin/bus/deadletter/", {"action": "replay", "_selected_action": [letter.pk]}, follow=True
    )
    assert response.status_code == 200
    row = OutboxMessage.objects.get()
    assert (row.exchange, row.routing_key, row.message_id) == ("", "billing.order_placed", "m-1")
    letter.refresh_from_db()
    assert letter.state == "replayed"
    # a second replay is refused, and writes nothing
    operator_client.post("/admin/bus/deadletter/", {"action": "replay", "_selected_action": [letter.pk]})
    assert OutboxMessage.objects.count() == 1


def test_discard_marks_it_handled_without_sending(operator_client, letter):
    operator_client.post("/admin/bus/deadletter/", {"action": "discard", "_selected_action": [letter.pk]})
    letter.refresh_from_db()
    assert letter.state == "discarded"
    assert not OutboxMessage.objects.exists()


def test_stuck_outbox_rows_are_visible(operator_client):
    OutboxMessage.objects.create(
        message_id="s-1",
        type="order.placed",
        exchange="billing",
        routing_key="x",
        aggregate="order:1",
        correlation_id="c",
        body="{}",
        attempts=12,
        last_error="unroutable: NO_ROUTE",
    )
    page = operator_client.get("/admin/bus/outboxmessage/?state=stuck").content.decode()
    assert "NO_ROUTE" in page
