"""RPC over AMQP: a blocking client with a timeout, answered by an ``rpc=True`` consumer.

The request is an ordinary envelope published to the command's exchange with ``reply_to`` set
to RabbitMQ's direct reply-to pseudo-queue and the AMQP ``correlation_id`` set to a fresh call
id (the tracing correlation id travels in the envelope). The reply is matched by call id: a
late reply (after the caller gave up) or a duplicate reply is ignored. A business error of the
server comes back as :class:`RemoteError` with its code; no answer in time is
:class:`RpcTimeout`. Commands must be idempotent by business key, so a caller may retry.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import pika
from pika.exceptions import AMQPError

from bus.catalog import EventType, routing_key_for
from bus.connection import connection_parameters, message_properties
from bus.correlation import current_or_new_correlation_id
from bus.envelope import Envelope

logger = logging.getLogger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


class RpcError(Exception):
    code = "rpc_error"


class RpcTimeout(RpcError):
    """No reply within the timeout. The command may or may not have run: retry with the same key."""

    code = "rpc_timeout"


class RemoteError(RpcError):
    """The server answered with an error."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RpcClient:
    """A client for one thread (pika connections are not thread-safe); see :func:`rpc_client`."""

    def __init__(self) -> None:
        self._connection: pika.BlockingConnection | None = None
        self._channel = None
        self._waiting_for: str | None = None
        self._reply: bytes | None = None

    def _ensure_channel(self):  # type: ignore[no-untyped-def]
        if self._connection is None or not self._connection.is_open or not self._channel.is_open:
            self.close()
            self._connection = pika.BlockingConnection(connection_parameters("rpc-client"))
            self._channel = self._connection.channel()
            self._channel.basic_consume(queue=DIRECT_REPLY_TO, on_message_callback=self._on_reply, auto_ack=True)
        return self._channel

    def _on_reply(self, channel, method, properties: pika.BasicProperties, body: bytes) -> None:  # type: ignore[no-untyped-def]
        if properties.correlation_id == self._waiting_for and self._reply is None:
            self._reply = body
        else:
            logger.info("ignoring a late or duplicate RPC reply", extra={"call_id": properties.correlation_id})

    def call(self, command: EventType, payload: dict[str, Any], *, timeout: float = 5.0) -> Any:
        data = command.validate(payload)
        envelope = Envelope(
            type=command.name, version=command.version, payload=data, correlation_id=current_or_new_correlation_id()
        )
        call_id = uuid.uuid4().hex
        try:
            channel = self._ensure_channel()
            self._waiting_for, self._reply = call_id, None
            channel.basic_publish(
                exchange=command.exchange,
                routing_key=routing_key_for(command, data),
                body=envelope.to_json(),
                properties=message_properties(
                    message_id=envelope.message_id, type=command.name, correlation_id=call_id,
                    timestamp=int(time.time()), reply_to=DIRECT_REPLY_TO,
                ),
            )
            deadline = time.monotonic() + timeout
            while self._reply is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RpcTimeout(f"{command.name}: no reply within {timeout:g} s")
                self._connection.process_data_events(time_limit=min(remaining, 0.25))
        except AMQPError as error:
            self.close()
            raise RpcTimeout(f"{command.name}: connection lost before the reply ({error!r})") from error
        finally:
            self._waiting_for = None
        reply = json.loads(self._reply)
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise RemoteError(str(error.get("code", "error")), str(error.get("message", "")))
        return reply.get("result")

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.close()
            except AMQPError:
                pass
        self._connection = self._channel = None


_local = threading.local()


def rpc_client() -> RpcClient:
    """This thread's RPC client, connected on first use and reused after."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = RpcClient()
    return client
