"""The dead-letter collector: moves every ``<queue>.dead`` message into the DeadLetter table,
where operators inspect, replay or discard it (Django admin).

It stores whatever arrives: a letter is by definition a message something could not handle,
so no header, property or body may make the collector fail on it (each is read defensively,
cut to its column, made JSON-safe). Only a fault of its own (the database away) gives a letter
back to its ``.dead`` queue; after that queue's delivery limit the broker parks it in
``bus.parked`` (bus/topology.py), so even then nothing vanishes.

What a replay may trust is recorded from what the broker vouches for, never from a header a
publisher writes: the queue a letter came from is the ``.dead`` queue the collector read it
from (minus ``.dead``), and its publisher the user the broker authenticated — the letter's own
``user_id``, or, when the queue's own role dead-lettered it (a worker's runner republishes as
itself), the first publisher that runner recorded (bus/roles.py). The ``x-passline-queue``
header and the broker's ``x-death`` record are kept with the letter, for reading only.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from bus import roles
from bus.handlers import QueueReader, register, registered
from bus.models import DeadLetter
from bus.topology import PARKING_QUEUE

logger = logging.getLogger(__name__)

__all__ = ["PARKING_QUEUE", "collect", "dead_letter_collector"]


def _dead_letter_queues() -> list[str]:
    return sorted(c.dead_letter_queue for c in registered().values() if c.consume_from is None)


def _count(value: Any) -> int:
    """A count from a header as it came: anything but a small non-negative integer is 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if 0 <= value < 2**31 else 0
    if isinstance(value, (str, bytes)) and value.strip().isdigit():
        return min(int(value), 2**31 - 1)
    return 0


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _reason(headers: dict[str, Any]) -> tuple[str, str, int]:
    """(reason, queue, attempts) from our own headers or the broker's x-death record."""
    if "x-passline-reason" in headers:
        return (
            _text(headers["x-passline-reason"]),
            _text(headers.get("x-passline-queue", "")),
            _count(headers.get("x-passline-attempts", 0)),
        )
    deaths = headers.get("x-death")
    first = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
    reason = _text(headers.get("x-first-death-reason") or first.get("reason")) or "unknown"
    queue = _text(headers.get("x-first-death-queue") or first.get("queue"))
    attempts = _count(headers.get("x-delivery-count", first.get("count", 0)))
    if reason == "delivery_limit":
        reason = "delivery limit reached: the message was handed out too often (a crash loop?)"
    return reason, queue, attempts


def _publisher(user_id: Any, headers: dict[str, Any], queue: str) -> str:
    """The letter's first publisher as the broker authenticated it (bus/roles.py)."""
    try:
        role = roles.role_of_queues([queue])
    except roles.RoleError:
        role = ""  # a queue of no role: only the letter's own user_id counts
    if role:
        return roles.publisher_of(user_id, headers, role)
    return user_id if isinstance(user_id, str) else ""


def collect(delivery) -> None:  # type: ignore[no-untyped-def]
    """Store one dead letter (once: a redelivered one finds its row)."""
    props = delivery.properties
    headers = _jsonable(props.headers if isinstance(props.headers, dict) else {"headers": props.headers})
    reason, _, attempts = _reason(headers)
    source = _text(getattr(delivery, "source", ""))
    # The queue the letter died in: the .dead queue it sat in says so, whatever its headers claim.
    queue = (source.removesuffix(".dead") if source else _text(delivery.method.routing_key))[:255]
    publisher = _publisher(props.user_id, headers if isinstance(headers, dict) else {}, queue)[:255]
    message_id = _text(props.message_id)[:64]
    if (
        message_id
        and DeadLetter.objects.filter(message_id=message_id, queue=queue, state=DeadLetter.State.DEAD).exists()
    ):
        return
    letter = DeadLetter(
        message_id=message_id,
        queue=queue,
        type=_text(props.type)[:100],
        reason=reason,
        attempts=attempts,
        correlation_id=_text(props.correlation_id)[:128],
        publisher=publisher,
        body=_text(delivery.body).replace("\x00", "\ufffd"),
        headers=headers,
        dead_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            letter.save()
    except (DataError, IntegrityError) as error:
        # Something in it the database refuses: keep the letter with what surely fits.
        logger.warning("storing dead letter %s whole failed (%r); storing it without its headers", message_id, error)
        letter.pk = None
        letter.headers = {"unstorable": repr(error)[:500]}
        letter.body = letter.body.encode("ascii", errors="backslashreplace").decode("ascii")
        letter.save()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {_text(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and infinities are not JSON
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


dead_letter_collector = register(
    QueueReader(queue="bus.deadletters", handler=collect, consume_from=_dead_letter_queues, prefetch=20)
)
