"""Connection parameters shared by every process that talks to RabbitMQ."""

from __future__ import annotations

import os
import socket
from typing import Any

import pika
from django.conf import settings

from bus import roles

# A broker under memory or disk alarm blocks publishers; past this, give up and reconnect.
BLOCKED_TIMEOUT_SECONDS = 60


def connection_parameters(role: str | None, *, name: str = "") -> pika.URLParameters:
    """Parameters to connect as ``role``'s user (bus/roles.py): RABBITMQ_URL gives the broker
    and vhost, the role its own user and password. Without role passwords (development, the
    test suite's default) RABBITMQ_URL's own user; ``role`` then only names the connection."""
    params = pika.URLParameters(settings.RABBITMQ_URL)
    if roles.enforced():
        if role is None:
            raise roles.RoleError("this process has no bus role: set PASSLINE_BUS_ROLE")
        params.credentials = pika.PlainCredentials(*roles.credentials(role))
    # Work that keeps a connection's thread busy longer than two heartbeats must pump events
    # meanwhile (the consumer runner does), or the broker drops the connection.
    params.heartbeat = settings.RABBITMQ_HEARTBEAT
    params.blocked_connection_timeout = BLOCKED_TIMEOUT_SECONDS
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {
        "connection_name": f"passline-{name or role or '-'}@{socket.gethostname()}:{os.getpid()}"
    }
    return params


def message_properties(
    *,
    message_id: str,
    type: str,
    correlation_id: str,
    timestamp: int,
    user_id: str,
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
        # The broker refuses a message whose user_id is not the connection's user: consumers
        # know who published it (bus/roles.py).
        user_id=user_id,
        delivery_mode=pika.DeliveryMode.Persistent,
        priority=priority or None,
        reply_to=reply_to,
        headers=headers,
    )
