"""Connection parameters shared by every process that talks to RabbitMQ."""

from __future__ import annotations

import os
import socket
from typing import Any

import pika
from django.conf import settings

# A broker under memory or disk alarm blocks publishers; past this, give up and reconnect.
BLOCKED_TIMEOUT_SECONDS = 60


def connection_parameters(role: str) -> pika.URLParameters:
    params = pika.URLParameters(settings.RABBITMQ_URL)
    # Work that keeps a connection's thread busy longer than two heartbeats must pump events
    # meanwhile (the consumer runner does), or the broker drops the connection.
    params.heartbeat = settings.RABBITMQ_HEARTBEAT
    params.blocked_connection_timeout = BLOCKED_TIMEOUT_SECONDS
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": f"passline-{role}@{socket.gethostname()}:{os.getpid()}"}
    return params


def message_properties(
    *,
    message_id: str,
    type: str,
    correlation_id: str,
    timestamp: int,
    priority: int = 0,
    reply_to: str | None = None,
    headers: dict[str, Any] | None = None,
) -> pika.BasicProperties:
    return pika.BasicProperties(
        message_id=message_id,
        correlation_id=correlation_id,
        type=type,
        timestamp=timestamp,
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        priority=priority or None,
        reply_to=reply_to,
        headers=headers,
    )
