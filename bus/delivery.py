"""A delivery as the runner holds it, its outcome, and turning it into a handler's Message:
the headers and properties checked (nothing a producer writes can crash the runner), the
envelope decoded and the payload validated against the registry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pydantic import ValidationError

from bus.catalog import InvalidPayload
from bus.correlation import new_correlation_id
from bus.envelope import Envelope, EnvelopeError
from bus.handlers import Handler, Message

ATTEMPT_HEADER = "x-passline-attempt"
# An attempt header above this is not one the runner wrote: the message is malformed.
MAX_ATTEMPT = 1000


@dataclass
class Delivery:
    consumer: Handler
    channel: BlockingChannel
    method: Any
    properties: pika.BasicProperties
    body: bytes
    # The queue it was consumed from, as the runner subscribed to it (a broker fact, unlike
    # any header): a raw consumer reading several queues tells them apart by it.
    source: str = ""

    @property
    def queue(self) -> str:
        return self.consumer.queue

    @property
    def headers(self) -> dict[str, Any]:
        headers = self.properties.headers
        return dict(headers) if isinstance(headers, dict) else {}


@dataclass
class Outcome:
    status: str  # "ok", "duplicate", "retry", "dead"
    reason: str = ""
    result: Any = None
    error_code: str = ""


class MalformedDelivery(ValueError):
    """A header or property that no Passline producer writes: dead-lettered, never trusted."""


def attempt_of(delivery: Delivery) -> int:
    """The delivery's attempt (1 when first delivered); MalformedDelivery for a bad header."""
    value = delivery.headers.get(ATTEMPT_HEADER, 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPT:
        raise MalformedDelivery(
            f"malformed {ATTEMPT_HEADER} header: {value!r:.100} (an integer from 1 to {MAX_ATTEMPT})"
        )
    return value


def attempt_or_first(delivery: Delivery) -> int:
    try:
        return attempt_of(delivery)
    except MalformedDelivery:
        return 1


def check_properties(delivery: Delivery) -> None:
    """Refuse what the runner would otherwise trust: the headers table, the message id."""
    props = delivery.properties
    if props.headers is not None and not isinstance(props.headers, dict):
        raise MalformedDelivery(f"headers are not a table: {type(props.headers).__name__}")
    if not isinstance(props.message_id, str) or not props.message_id:
        raise MalformedDelivery("no message_id property")
    attempt_of(delivery)


def delivery_correlation_id(delivery: Delivery) -> str:
    """The request the delivery belongs to: its AMQP correlation_id, but for an RPC command,
    whose correlation_id is the call id, the envelope's (read only then)."""
    value = delivery.properties.correlation_id
    if delivery.properties.reply_to:
        try:
            value = json.loads(delivery.body).get("correlation_id")
        except (ValueError, AttributeError):
            value = None
    return value if isinstance(value, str) and value else new_correlation_id()


def decode(delivery: Delivery, attempt: int) -> Message[Any]:
    """The delivery as a handler's Message: envelope, type and payload checked, or an error."""
    envelope = Envelope.from_json(delivery.body)
    if len(envelope.message_id) > 64:
        raise EnvelopeError("message_id longer than 64 characters")
    event = delivery.consumer.accepts(envelope.type)
    if event is None:
        raise LookupError(f"{delivery.queue} does not take {envelope.type!r} messages")
    try:
        payload = event.schema.model_validate(envelope.payload)
    except ValidationError as error:
        raise InvalidPayload(event.name, error) from None
    return Message(
        envelope=envelope,
        payload=payload,
        event=event,
        attempt=attempt,
        redelivered=bool(delivery.method.redelivered),
        exchange=delivery.method.exchange,
        routing_key=delivery.method.routing_key,
    )
