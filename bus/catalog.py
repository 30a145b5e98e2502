"""The registry of message types: each declared once, by the app that publishes it.

An app declares its events in its own ``events.py`` (``ordering/events.py``,
``billing/events.py``, ``notifications/events.py``) with :func:`declare`: name, exchange,
routing key, payload schema (a pydantic model), version. A second declaration of a name is
refused at import time. Django imports every app's ``events`` module when it starts
(``bus.apps``), so the registry is complete wherever the project runs; this package imports
nothing of the apps.

Publishers, handlers, the bridge and the WebSocket consumers import the declared objects; no
routing-key string appears at a call site (a handler that wants some statuses only binds with
``ORDER_STATUS_CHANGED.binding(status="paid")``). A payload is validated when it is written
to the outbox and again when it is consumed (the broker is a trust boundary). Schema changes
are additive; a breaking change is a new ``version``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Formatter
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Exchange:
    """Names of the exchanges (see bus/topology.py for their kinds and bindings)."""

    BILLING = "billing"
    NOTIFICATION = "notification"
    CUSTOMER = "customer"
    BALANCE = "balance"
    AUDIT = "audit"


class InvalidPayload(ValueError):
    """A payload that does not match its event type's schema."""

    def __init__(self, event: str, error: ValidationError | str):
        detail = (
            error
            if isinstance(error, str)
            else "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}" for e in error.errors())
        )
        super().__init__(f"{event}: invalid payload: {detail}")
        self.event = event


class Payload(BaseModel):
    # Unknown fields are kept, not refused: a newer publisher may add fields (additive changes).
    model_config = ConfigDict(extra="allow", frozen=True)


@dataclass(frozen=True)
class EventType:
    name: str
    exchange: str
    routing_key: str
    schema: type[Payload]
    version: int = 1

    def binding(self, **fields: str) -> tuple[str, str]:
        """``(exchange, binding key)`` for these messages, with the routing key's fields given
        here filled in and the others matching any word: ``binding(status="paid")``."""
        unknown = set(fields) - {name for _, name, _, _ in Formatter().parse(self.routing_key) if name}
        if unknown:
            raise ValueError(f"{self.name}'s routing key has no field {', '.join(sorted(unknown))}")
        key = re.sub(r"\{(\w+)\}", lambda m: fields.get(m.group(1), "*"), self.routing_key)
        return self.exchange, key

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as JSON-ready data, or InvalidPayload."""
        try:
            return self.schema.model_validate(payload).model_dump(mode="json")
        except ValidationError as error:
            raise InvalidPayload(self.name, error) from None


# --- the registry ------------------------------------------------------------------------------

EVENTS: dict[str, EventType] = {}


class DuplicateEvent(ValueError):
    """A message type declared twice: the second declaration would silently replace the first."""


def declare(name: str, exchange: str, routing_key: str, schema: type[Payload], version: int = 1) -> EventType:
    """Declare a message type (once per name, in its app's ``events.py``) and return it."""
    if name in EVENTS:
        raise DuplicateEvent(f"the message type {name!r} is declared twice")
    event = EventType(name, exchange, routing_key, schema, version)
    EVENTS[name] = event
    return event


def event_type(name: str) -> EventType:
    try:
        return EVENTS[name]
    except KeyError:
        raise KeyError(f"unknown event type {name!r}") from None


def routing_key_for(event: EventType, payload: dict[str, Any]) -> str:
    """The event's routing key with payload fields filled in (``order.status.{status}``)."""
    try:
        return event.routing_key.format(**payload)
    except KeyError as missing:
        raise InvalidPayload(event.name, f"routing key needs {missing}") from None


# Exchange-to-exchange bindings an app asks for (``notifications/events.py``: what a customer is
# told about passes through the ``customer`` exchange), as (destination, source, binding key);
# the topology declares them.
EXCHANGE_BINDINGS: list[tuple[str, str, str]] = []


def bind_exchange(destination: str, source: str, key: str) -> None:
    if (destination, source, key) not in EXCHANGE_BINDINGS:
        EXCHANGE_BINDINGS.append((destination, source, key))
