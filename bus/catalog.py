"""Every message type, declared once: name, exchange, routing key, payload schema, version.

Publishers, consumers, the bridge and the WebSocket consumers import these objects; no
routing-key string appears at a call site. Payload schemas are pydantic models: a payload is
validated when it is written to the outbox and again when it is consumed (the broker is a
trust boundary). Schema changes are additive; a breaking change is a new ``version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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
        detail = error if isinstance(error, str) else "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}" for e in error.errors()
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

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as JSON-ready data, or InvalidPayload."""
        try:
            return self.schema.model_validate(payload).model_dump(mode="json")
        except ValidationError as error:
            raise InvalidPayload(self.name, error) from None


# --- payloads ------------------------------------------------------------------------------


class OrderPlaced(Payload):
    order_id: int
    customer_id: int
    restaurant_id: int
    total: Decimal
    currency: str
    version: int


class OrderStatusChanged(Payload):
    order_id: int
    customer_id: int
    restaurant_id: int
    status: str
    from_status: str
    version: int
    at: datetime
    reason: str = ""


# --- the catalog ---------------------------------------------------------------------------

ORDER_PLACED = EventType("order.placed", Exchange.BILLING, "order.placed", OrderPlaced)
# One event for every status change; the routing key names the new status, so a consumer can
# bind to just the statuses it cares about ("order.status.paid") or to all ("order.status.*").
ORDER_STATUS_CHANGED = EventType("order.status_changed", Exchange.NOTIFICATION, "order.status.{status}", OrderStatusChanged)

EVENTS: dict[str, EventType] = {e.name: e for e in [ORDER_PLACED, ORDER_STATUS_CHANGED]}


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
