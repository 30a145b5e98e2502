"""The registry of message types: each app declares its own, a name only once; event types
validate their payloads and build their routing keys and bindings."""

from decimal import Decimal

import pytest

from bus.catalog import EVENTS, DuplicateEvent, EventType, Exchange, InvalidPayload, Payload, declare, routing_key_for
from ordering.events import ORDER_PLACED, ORDER_STATUS_CHANGED


def test_each_event_name_is_declared_once_with_an_exchange_and_a_schema():
    assert set(EVENTS) == {e.name for e in EVENTS.values()}
    for event in EVENTS.values():
        assert event.exchange and event.routing_key and event.version >= 1


def test_a_valid_payload_becomes_json_ready_data():
    data = ORDER_PLACED.validate(
        {
            "order_id": 1,
            "customer_id": 2,
            "restaurant_id": 3,
            "total": Decimal("12.50"),
            "currency": "EUR",
            "version": 1,
        }
    )
    assert data["total"] == "12.50"


def test_unknown_fields_are_kept_for_additive_changes():
    data = ORDER_PLACED.validate(
        {
            "order_id": 1,
            "customer_id": 2,
            "restaurant_id": 3,
            "total": "1.00",
            "currency": "EUR",
            "version": 1,
            "new": "x",
        }
    )
    assert data["new"] == "x"


@pytest.mark.parametrize("payload", [{}, {"order_id": "seven"}, {"order_id": 1, "total": "lots"}])
def test_an_invalid_payload_is_refused_with_the_field_named(payload):
    with pytest.raises(InvalidPayload, match="order.placed: invalid payload"):
        ORDER_PLACED.validate(payload)


def test_routing_keys_take_fields_from_the_payload():
    assert routing_key_for(ORDER_STATUS_CHANGED, {"status": "paid"}) == "order.status.paid"
    assert routing_key_for(ORDER_PLACED, {}) == "order.placed"


def test_a_second_declaration_of_a_name_is_refused_and_keeps_the_first():
    with pytest.raises(DuplicateEvent, match="order.placed"):
        declare("order.placed", Exchange.CUSTOMER, "elsewhere", Payload)
    assert EVENTS["order.placed"] is ORDER_PLACED and ORDER_PLACED.exchange == Exchange.BILLING


def test_every_app_declares_its_own_events_into_the_one_registry():
    from billing import events as billing_events
    from notifications import events as notification_events
    from ordering import events as ordering_events

    for module in (ordering_events, billing_events, notification_events):
        declared = [value for value in vars(module).values() if isinstance(value, EventType)]
        assert declared and all(EVENTS[event.name] is event for event in declared)
    assert {"order.placed", "balance.debit", "customer.notify"} <= set(EVENTS)


def test_a_binding_fills_the_given_fields_and_matches_any_word_for_the_others():
    assert ORDER_STATUS_CHANGED.binding(status="paid") == (Exchange.NOTIFICATION, "order.status.paid")
    assert ORDER_STATUS_CHANGED.binding() == (Exchange.NOTIFICATION, "order.status.*")
    with pytest.raises(ValueError, match="no field colour"):
        ORDER_STATUS_CHANGED.binding(colour="red")
