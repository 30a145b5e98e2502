"""Operator actions on the bus: replaying and discarding dead letters."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from bus.models import DeadLetter, OutboxMessage


class DeadLetterAlreadyHandled(Exception):
    code = "already_handled"


@transaction.atomic
def dead_letter_replay(*, dead_letter_id: int) -> OutboxMessage:
    """Send a dead letter back to its queue (through the outbox), as a first attempt again."""
    letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
    if letter.state != DeadLetter.State.DEAD:
        raise DeadLetterAlreadyHandled(f"dead letter {letter.pk} was already {letter.state}")
    row = OutboxMessage.objects.create(
        message_id=letter.message_id or f"replay-{letter.pk}",
        type=letter.type,
        exchange="",  # the default exchange: straight into the queue it died in
        routing_key=letter.queue,
        aggregate=f"dead-letter:{letter.pk}",
        correlation_id=letter.correlation_id,
        body=letter.body,
    )
    letter.state = DeadLetter.State.REPLAYED
    letter.handled_at = timezone.now()
    letter.save(update_fields=["state", "handled_at"])
    return row


@transaction.atomic
def dead_letter_discard(*, dead_letter_id: int) -> None:
    letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
    if letter.state != DeadLetter.State.DEAD:
        raise DeadLetterAlreadyHandled(f"dead letter {letter.pk} was already {letter.state}")
    letter.state = DeadLetter.State.DISCARDED
    letter.handled_at = timezone.now()
    letter.save(update_fields=["state", "handled_at"])
