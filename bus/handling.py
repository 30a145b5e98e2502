"""Running handlers: in the transaction that records each message id (at most once in
effect), a batch together and, if it fails, each message again on its own."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections, connection, transaction

from bus.correlation import Trace, new_correlation_id, traced
from bus.delivery import Delivery, Outcome
from bus.handlers import Handler, Message, Permanent

logger = logging.getLogger("bus.runner")


def _record_processed(consumer: str, message_id: str) -> bool:
    """Record the message in the current transaction; False when it was handled before.

    INSERT IGNORE answers in one statement; a concurrent copy handling the same message
    waits here on the unique key until the first commits (then finds it) or rolls back.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT IGNORE INTO bus_processedmessage (consumer, message_id, processed_at) VALUES (%s, %s, %s)",
            [consumer, message_id, datetime.now(UTC).replace(tzinfo=None)],
        )
        return bool(cursor.rowcount == 1)


class _Duplicate(Exception):
    """A batch holds a message handled before: the batch is handled one message at a time."""


def _record_processed_many(consumer: str, message_ids: list[str]) -> int:
    """Record a batch in one statement; the count of new rows (fewer: a duplicate among them)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT IGNORE INTO bus_processedmessage (consumer, message_id, processed_at) VALUES "
            + ", ".join(["(%s, %s, %s)"] * len(message_ids)),
            [value for message_id in message_ids for value in (consumer, message_id, now)],
        )
        return int(cursor.rowcount)


def _call_on_failure(consumer: Handler, message: Message[Any], reason: str, final: bool) -> None:
    try:
        with transaction.atomic():
            consumer.on_failure(message, reason, final)  # type: ignore[misc]
    except Exception:
        logger.exception("on_failure of %s failed", consumer.queue)


def in_transactions(consumer: Handler, items: list[tuple[Delivery, Message[Any] | None]]) -> list[Outcome]:
    """All messages in one transaction; if any fails, each again in its own, so one bad
    message costs the others only a second try, never their effect.

    An RPC server's command that answers with a business error (an exception with a
    ``code``) is not a failure of the batch: its savepoint rolls back its own effects and
    the error is its reply, exactly as when it runs alone.
    """
    close_old_connections()
    try:
        if len(items) > 1:
            try:
                with transaction.atomic():
                    if not consumer.rpc and consumer.consume_from is None:
                        ids = [message.message_id for _, message in items if message is not None]
                        if _record_processed_many(consumer.queue, ids) != len(ids):
                            raise _Duplicate  # sorted out one by one below
                    if consumer.batch_handler is not None and not consumer.rpc:
                        results = consumer.batch_handler([message for _, message in items if message is not None])
                        return [Outcome("ok", result=result) for result in results]
                    return [
                        handle_one(consumer, delivery, message, in_batch=True, recorded=True)
                        for delivery, message in items
                    ]
            except Exception as error:  # noqa: BLE001 - retried one by one just below
                # A redelivery is routine; anything else is worth a look (a deadlock, a fault).
                log = logger.info if isinstance(error, _Duplicate) else logger.warning
                log(
                    "a batch of %d from %s goes again one message at a time: %r",
                    len(items),
                    consumer.queue,
                    error,
                    extra={
                        "queue": consumer.queue,
                        "batch": len(items),
                        # The line is the batch's: the requests it held, each goes on alone below.
                        "correlation_ids": sorted({m.envelope.correlation_id for _, m in items if m is not None}),
                    },
                )
        return [handle_one(consumer, delivery, message, in_batch=False) for delivery, message in items]
    finally:
        close_old_connections()


def handle_one(
    consumer: Handler, delivery: Delivery, message: Message[Any] | None, *, in_batch: bool, recorded: bool = False
) -> Outcome:
    """Record the message id and run the handler, both in one transaction (a savepoint
    inside a batch's): if the handler fails, the record goes with its effects. Inside a
    batch, any failure but an RPC server's business answer is raised, to the batch.

    Runs under the message's trace: its correlation id on every log line, and its id the
    causation id of every message the handler writes."""
    trace = Trace.of(message.envelope) if message is not None else Trace(new_correlation_id())
    with traced(trace):
        try:
            # Inside a batch no savepoint, since any failure rolls the whole batch back
            # anyway; except for an RPC command, whose business error undoes only its own.
            with transaction.atomic(savepoint=not in_batch or consumer.rpc):
                if message is not None and not consumer.rpc and not recorded:
                    if not _record_processed(consumer.queue, message.message_id):
                        return Outcome("duplicate")
                # A queue reader's handler takes the raw delivery (it reads others' queues as they are).
                handle: Callable[[Any], Any] = consumer.handler
                return Outcome("ok", result=handle(message if message is not None else delivery))
        except Exception as error:
            code = "" if isinstance(error, Permanent) else getattr(error, "code", "")
            if consumer.rpc and code:
                # A business answer ("insufficient_funds"), not a failure of the consumer.
                return Outcome("ok", error_code=code, reason=str(error))
            if in_batch:
                raise
            if isinstance(error, Permanent):
                outcome = Outcome("dead", reason=f"permanent: {error}")
            else:
                logger.warning("handler of %s failed: %r", consumer.queue, error, exc_info=True)
                outcome = Outcome("retry", reason="".join(traceback.format_exception_only(error)).strip())
            if consumer.on_failure is not None and isinstance(message, Message):
                final = outcome.status == "dead" or message.attempt >= consumer.max_attempts
                _call_on_failure(consumer, message, outcome.reason, final)
            return outcome
