"""The dead-letter collector: moves every ``<queue>.dead`` message into the DeadLetter table,
where operators inspect, replay or discard it (Django admin)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from bus.consumer import Consumer, register, registered
from bus.models import DeadLetter


def _dead_letter_queues() -> list[str]:
    return sorted(c.dead_letter_queue for c in registered().values() if c.consume_from is None)


def _reason(headers: dict[str, Any]) -> tuple[str, str, int]:
    """(reason, queue, attempts) from our own headers or the broker's x-death record."""
    if "x-passline-reason" in headers:
        return (
            str(headers["x-passline-reason"]),
            str(headers.get("x-passline-queue", "")),
            int(headers.get("x-passline-attempts", 0)),
        )
    deaths = headers.get("x-death") or [{}]
    first = deaths[0] if isinstance(deaths, list) and deaths else {}
    reason = headers.get("x-first-death-reason") or first.get("reason") or "unknown"
    queue = headers.get("x-first-death-queue") or first.get("queue") or ""
    attempts = int(headers.get("x-delivery-count", first.get("count", 0)) or 0)
    if reason == "delivery_limit":
        reason = "delivery limit reached: the message was handed out too often (a crash loop?)"
    return str(reason), str(queue), attempts


def collect(delivery) -> None:  # type: ignore[no-untyped-def]
    """Store one dead letter (once: a redelivered one finds its row)."""
    props = delivery.properties
    headers = _jsonable(dict(props.headers or {}))
    reason, queue, attempts = _reason(headers)
    queue = queue or delivery.method.routing_key
    message_id = (props.message_id or "")[:64]
    if message_id and DeadLetter.objects.filter(message_id=message_id, queue=queue, state=DeadLetter.State.DEAD).exists():
        return
    DeadLetter.objects.create(
        message_id=message_id, queue=queue, type=(props.type or "")[:100], reason=reason, attempts=attempts,
        correlation_id=(props.correlation_id or "")[:128], body=delivery.body.decode("utf-8", errors="replace"),
        headers=headers, dead_at=timezone.now(),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


dead_letter_collector = register(
    Consumer(queue="bus.deadletters", events=(), handler=collect, consume_from=_dead_letter_queues, prefetch=20)
)
