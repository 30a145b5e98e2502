"""The JSON envelope every Passline message travels in, and its AMQP properties."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class EnvelopeError(ValueError):
    """A body that is not a Passline envelope: not JSON, or a field missing or mistyped."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Envelope:
    type: str
    version: int
    payload: dict[str, Any]
    correlation_id: str
    causation_id: str | None = None
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = field(default_factory=_now)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "message_id": self.message_id,
                "type": self.type,
                "version": self.version,
                "occurred_at": self.occurred_at.isoformat(),
                "correlation_id": self.correlation_id,
                "causation_id": self.causation_id,
                "payload": self.payload,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> Envelope:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise EnvelopeError(f"body is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise EnvelopeError("body is not a JSON object")
        try:
            envelope = cls(
                message_id=_str(data, "message_id"),
                type=_str(data, "type"),
                version=_int(data, "version"),
                occurred_at=datetime.fromisoformat(_str(data, "occurred_at")),
                correlation_id=_str(data, "correlation_id"),
                causation_id=data.get("causation_id"),
                payload=data["payload"],
            )
        except (KeyError, ValueError, TypeError) as error:
            raise EnvelopeError(f"not an envelope: {error}") from None
        if not isinstance(envelope.payload, dict):
            raise EnvelopeError("payload is not an object")
        if envelope.causation_id is not None and not isinstance(envelope.causation_id, str):
            raise EnvelopeError("causation_id is not a string")
        return envelope

    def caused(self, type: str, version: int, payload: dict[str, Any]) -> Envelope:
        """A new message caused by this one: same correlation, causation = this message."""
        return Envelope(
            type=type,
            version=version,
            payload=payload,
            correlation_id=self.correlation_id,
            causation_id=self.message_id,
        )


def _str(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{key} must be a non-empty string")
    return value


def _int(data: dict[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an integer")
    return value
