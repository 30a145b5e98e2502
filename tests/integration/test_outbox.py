"""Writing to the outbox happens inside the state change's transaction, or not at all."""

import json

import pytest
from django.db import transaction

from bus.catalog import InvalidPayload
from bus.correlation import correlation_context
from bus.models import OutboxMessage
from bus.outbox import OutboxOutsideTransaction, outbox_write
from ordering.events import ORDER_PLACED

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


def test_pruning_deletes_only_what_was_sent_or_processed_before_the_retention(db):
    from datetime import timedelta

    from django.core.management import CommandError, call_command
    from django.utils import timezone

    from bus.models import OutboxMessage, ProcessedMessage
    from bus.services import RetentionTooShort, bus_prune

    now, old = timezone.now(), timezone.now() - timedelta(days=8)

    def row(name: str, *, sent_at):  # type: ignore[no-untyped-def]
        return OutboxMessage.objects.create(
            message_id=name,
            type="test.happened",
            exchange="customer",
            routing_key="test.happened",
            aggregate=f"test:{name}",
            correlation_id="c",
            body="{}",
            created_at=old,
            sent_at=sent_at,
        )

    row("old-sent", sent_at=old)
    row("old-unsent", sent_at=None)  # still owed by the relay, however old
    row("new-sent", sent_at=now)
    ProcessedMessage.objects.create(consumer="test.effects", message_id="old", processed_at=old)
    ProcessedMessage.objects.create(consumer="test.effects", message_id="new", processed_at=now)
    # when pruning what is older than a week, in chunks of one row
    assert bus_prune(older_than=timedelta(days=7), chunk=1) == {"outbox": 1, "processed": 1}
    # then only the old sent row and the old record are gone
    assert set(OutboxMessage.objects.values_list("message_id", flat=True)) == {"old-unsent", "new-sent"}
    assert set(ProcessedMessage.objects.values_list("message_id", flat=True)) == {"new"}
    # and a retention too short to recognise redeliveries is refused, deleting nothing
    with pytest.raises(RetentionTooShort):
        bus_prune(older_than=timedelta(hours=1))
    with pytest.raises(CommandError, match="at least 1 day"):
        call_command("prune_bus", "--days", "0.5")
    assert OutboxMessage.objects.count() == 2
