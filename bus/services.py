"""Operator actions on the bus: replaying and discarding dead letters, pruning what the bus
no longer needs."""

from __future__ import annotations

from datetime import timedelta

from django.db import models, transaction
from django.utils import timezone

from bus import roles
from bus.handlers import registered
from bus.models import DeadLetter, OutboxMessage, ProcessedMessage

# A processed-message record must outlive every redelivery of its message (retries wait up
# to minutes; a broker hands an unacked message back within its heartbeat): keep a day at least.
MIN_RETENTION = timedelta(days=1)


class RetentionTooShort(ValueError):
    code = "retention_too_short"


def bus_prune(*, older_than: timedelta, chunk: int = 5000) -> dict[str, int]:
    """Delete outbox rows sent, and processed-message records written, more than
    ``older_than`` ago, ``chunk`` rows a statement (short transactions, short locks).

    Unsent rows stay whatever their age (the relay still owes them); the audit trail keeps
    every message's envelope, so nothing of the history is lost. Returns the counts deleted.
    """
    if older_than < MIN_RETENTION:
        raise RetentionTooShort(
            f"Keep at least {MIN_RETENTION.days} day: a redelivered message must still be recognised as a duplicate."
        )
    cutoff = timezone.now() - older_than
    return {
        "outbox": _delete_in_chunks(OutboxMessage, models.Q(sent_at__lt=cutoff), chunk),
        "processed": _delete_in_chunks(ProcessedMessage, models.Q(processed_at__lt=cutoff), chunk),
    }


def _delete_in_chunks(model: type[OutboxMessage | ProcessedMessage], condition: models.Q, chunk: int) -> int:
    deleted = 0
    while True:
        ids = list(model.objects.filter(condition).order_by("pk").values_list("pk", flat=True)[:chunk])
        if not ids:
            return deleted
        deleted += model.objects.filter(pk__in=ids).delete()[0]


class DeadLetterAlreadyHandled(Exception):
    code = "already_handled"


class DeadLetterNotReplayable(Exception):
    """A letter a replay would launder: the relay would publish, as itself, what its first
    publisher had no right to (bus/roles.py), or into a queue no consumer reads."""

    code = "not_replayable"


def _replay_refusal(letter: DeadLetter) -> str | None:
    work_queues = {c.queue for c in registered().values() if c.consume_from is None}
    if letter.queue not in work_queues:
        return f"{letter.queue!r} is no consumer's queue"
    if roles.enforced():
        if roles.RELAY not in roles.publishers(letter.type):
            return f"{letter.type!r} is an RPC command: its caller retries it, a replay never does"
        refused = roles.refusal(letter.type, letter.publisher)
        if refused is not None:
            return refused
    return None


@transaction.atomic
def dead_letter_replay(*, dead_letter_id: int) -> OutboxMessage:
    """Send a dead letter back to the queue it died in (through the outbox), as a first
    attempt again; :class:`DeadLetterNotReplayable` when its publisher had no right to it."""
    letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
    if letter.state != DeadLetter.State.DEAD:
        raise DeadLetterAlreadyHandled(f"dead letter {letter.pk} was already {letter.state}")
    refused = _replay_refusal(letter)
    if refused is not None:
        raise DeadLetterNotReplayable(f"dead letter {letter.pk} is not replayed: {refused}")
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
