"""Writing to the outbox happens inside the state change's transaction, or not at all."""

import json

import pytest
from django.db import transaction

from bus.catalog import ORDER_PLACED, InvalidPayload
from bus.correlation import correlation_context
from bus.models import OutboxMessage
from bus.outbox import OutboxOutsideTransaction, outbox_write

PAYLOAD = {"order_id": 1, "customer_id": 2, "restaurant_id": 3, "total": "9.90", "currency": "EUR", "version": 1}


@pytest.mark.django_db(transaction=True)
def test_a_committed_transaction_leaves_one_row_with_the_whole_envelope():
    with correlation_context("corr-outbox-1"), transaction.atomic():
        envelope = outbox_write(event=ORDER_PLACED, payload=PAYLOAD, aggregate="order:1")
    row = OutboxMessage.objects.get()
    body = json.loads(row.body)
    assert (row.exchange, row.routing_key, row.aggregate, row.sent_at) == ("billing", "order.placed", "order:1", None)
    assert body["message_id"] == envelope.message_id == row.message_id
    assert body["correlation_id"] == "corr-outbox-1"
    assert body["payload"]["total"] == "9.90"


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_message():
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_write(event=ORDER_PLACED, payload=PAYLOAD, aggregate="order:1")
        raise RuntimeError("the state change failed")
    assert OutboxMessage.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_writing_outside_a_transaction_is_refused():
    with pytest.raises(OutboxOutsideTransaction):
        outbox_write(event=ORDER_PLACED, payload=PAYLOAD, aggregate="order:1")
    assert OutboxMessage.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_invalid_payload_is_refused_at_publish_time():
    with pytest.raises(InvalidPayload), transaction.atomic():
        outbox_write(event=ORDER_PLACED, payload={"order_id": "x"}, aggregate="order:1")
    assert OutboxMessage.objects.count() == 0
