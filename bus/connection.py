"""Connection parameters shared by every process that talks to RabbitMQ.

The broker may be one node (``RABBITMQ_URL``) or a cluster (``RABBITMQ_URLS``, one URL a node).
Every connection gets the parameters of all the nodes, in the order to try them: pika's
BlockingConnection takes such a list and tries each in turn, the relay's SelectConnection goes
down it one reconnect at a time. Each list starts at the next node of a rotation that begins at
a random one, so the processes of a deployment spread over the nodes instead of all landing on
the first, and a client whose node died finds a surviving one on its next try. What a client
had declared or consumed lives on the cluster (durable exchanges, quorum queues): after a
reconnect it declares again what it needs and resumes.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import pika
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from bus import roles

# A broker under memory or disk alarm blocks publishers; past this, give up and reconnect.
BLOCKED_TIMEOUT_SECONDS = 60
# A node that accepts TCP but never finishes the AMQP handshake (frozen, or paused by the
# cluster's pause_minority) holds a connection attempt this long before the next node is tried.
HANDSHAKE_TIMEOUT_SECONDS = 10

_rotation = itertools.count(random.randrange(1_000_000))
_rotation_lock = threading.Lock()


def broker_urls() -> list[str]:
    """The URL of every broker node: RABBITMQ_URLS, or RABBITMQ_URL alone."""
    return list(settings.RABBITMQ_URLS) or [settings.RABBITMQ_URL]


def broker_vhost() -> str:
    """The vhost every node's URL names (the same on all; ImproperlyConfigured otherwise)."""
    vhosts = {unquote(urlsplit(url).path[1:]) or "/" for url in broker_urls()}
    if len(vhosts) != 1:
        raise ImproperlyConfigured(f"RABBITMQ_URLS name several vhosts ({', '.join(sorted(vhosts))}): give one")
    return vhosts.pop()


def node_name(url: str) -> str:
    """A node as logs and /readyz name it: host and port, never the credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}"


def connected_node(connection: pika.BlockingConnection) -> str:
    """The node a BlockingConnection (given every node's parameters) ended up on."""
    params = getattr(getattr(connection, "_impl", None), "params", None)
    return f"{params.host}:{params.port}" if params is not None else "?"


def _next_start(nodes: int) -> int:
    with _rotation_lock:
        return next(_rotation) % nodes


def nodes_in_turn() -> list[str]:
    """Every node's URL, in the order to try them: from the next node of the rotation on."""
    urls = broker_urls()
    start = _next_start(len(urls))
    return urls[start:] + urls[:start]


def connection_parameters(role: str | None, *, name: str = "") -> list[pika.URLParameters]:
    """Parameters to connect as ``role``'s user (bus/roles.py), one per broker node, in the
    order to try them (a different first node each call). The URLs give the nodes and vhost,
    the role its own user and password. Without role passwords (development, the test suite's
    default) the URLs' own user; ``role`` then only names the connection."""
    return [node_parameters(url, role, name=name) for url in nodes_in_turn()]


def node_parameters(url: str, role: str | None, *, name: str = "") -> pika.URLParameters:
    """Parameters to connect to the one node ``url`` as ``role``'s user."""
    params = pika.URLParameters(url)
    if roles.enforced():
        if role is None:
            raise roles.RoleError("this process has no bus role: set PASSLINE_BUS_ROLE")
        params.credentials = pika.PlainCredentials(*roles.credentials(role))
    # Work that keeps a connection's thread busy longer than two heartbeats must pump events
    # meanwhile (the consumer runner does), or the broker drops the connection.
    params.heartbeat = settings.RABBITMQ_HEARTBEAT
    params.blocked_connection_timeout = BLOCKED_TIMEOUT_SECONDS
    # One try per node: the next node is the retry (a caller's back-off follows a full round).
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.stack_timeout = HANDSHAKE_TIMEOUT_SECONDS
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
