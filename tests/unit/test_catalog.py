"""Event types validate their payloads and build their routing keys."""

from decimal import Decimal

import pytest

from bus.catalog import EVENTS, ORDER_PLACED, ORDER_STATUS_CHANGED, InvalidPayload, routing_key_for


def test_each_event_name_is_declared_once_with_an_exchange_and_a_schema():
    assert set(EVENTS) == {e.name for e in EVENTS.values()}
    for event in EVENTS.values():
        assert event.exchange and event.routing_key and event.version >= 1


def test_a_valid_payload_becomes_json_ready_data():
    data = ORDER_PLACED.validate(
        {"order_id": 1, "customer_id": 2, "restaurant_id": 3, "total": Decimal("12.50"), "currency": "EUR", "version": 1}
    )
    assert data["total"] == "12.50"


def test_unknown_fields_are_kept_for_additive_changes():
    data = ORDER_PLACED.validate(
        {"order_id": 1, "customer_id": 2, "restaurant_id": 3, "total": "1.00", "currency": "EUR", "version": 1, "new": "x"}
    )
    assert data["new"] == "x"


@pytest.mark.parametrize("payload", [{}, {"order_id": "seven"}, {"order_id": 1, "total": "lots"}])
def test_an_invalid_payload_is_refused_with_the_field_named(payload):
    with pytest.raises(InvalidPayload, match="order.placed: invalid payload"):
        ORDER_PLACED.validate(payload)


def test_routing_keys_take_fields_from_the_payload():
    assert routing_key_for(ORDER_STATUS_CHANGED, {"status": "paid"}) == "order.status.paid"
    assert routing_key_for(ORDER_PLACED, {}) == "order.placed"
