"""The message envelope round-trips and refuses anything that is not one."""

import json

import pytest

from bus.envelope import Envelope, EnvelopeError


def test_round_trip_keeps_every_field():
    original = Envelope(
        type="order.placed", version=1, payload={"order_id": 7}, correlation_id="corr-1", causation_id="m-0"
    )
    copy = Envelope.from_json(original.to_json())
    assert copy == original


def test_a_caused_message_keeps_the_correlation_and_points_at_its_cause():
    cause = Envelope(type="order.placed", version=1, payload={}, correlation_id="corr-1")
    effect = cause.caused("payment.succeeded", 1, {"order_id": 7})
    assert (effect.correlation_id, effect.causation_id) == ("corr-1", cause.message_id)
    assert effect.message_id != cause.message_id


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"type": "x"}).encode(),
        json.dumps(
            {
                "message_id": "m",
                "type": "t",
                "version": "1",
                "occurred_at": "2026-01-01T00:00:00+00:00",
                "correlation_id": "c",
                "payload": {},
            }
        ).encode(),
        json.dumps(
            {
                "message_id": "m",
                "type": "t",
                "version": 1,
                "occurred_at": "yesterday",
                "correlation_id": "c",
                "payload": {},
            }
        ).encode(),
        json.dumps(
            {
                "message_id": "m",
                "type": "t",
                "version": 1,
                "occurred_at": "2026-01-01T00:00:00+00:00",
                "correlation_id": "c",
                "payload": [],
            }
        ).encode(),
    ],
)
def test_anything_else_is_an_envelope_error(body):
    with pytest.raises(EnvelopeError):
        Envelope.from_json(body)
