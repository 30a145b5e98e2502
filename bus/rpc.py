"""RPC over AMQP: a blocking client with a timeout, answered by an ``rpc=True`` consumer.

The request is an ordinary envelope published to the command's exchange with ``reply_to`` set
to RabbitMQ's direct reply-to pseudo-queue and the AMQP ``correlation_id`` set to a fresh call
id (the tracing correlation id travels in the envelope). The reply is matched by call id: a
late reply (after the caller gave up) or a duplicate reply is ignored. A business error of the
server comes back as :class:`RemoteError` with its code; no answer in time is
:class:`RpcTimeout`. Commands must be idempotent by business key, so a caller may retry.

An idle client's connection goes stale: nothing services a BlockingConnection between calls,
so the broker drops it after two missed heartbeats. Servicing it from a timer thread is not
an option (pika connections are not thread-safe, and ``add_callback_threadsafe`` only runs
its callback when the owning thread pumps). So a call first makes sure of its connection: one
idle for a heartbeat interval or more is replaced, a younger one is pumped once (which surfaces
a connection the broker closed), and a publish that fails on a lost connection is sent once
more on a fresh one — safe, since commands are idempotent by key and nothing was answered yet.
A call never fails merely because the connection went stale while idle.

:meth:`RpcClient.call_many` pipelines: it publishes every request, then waits for all the
replies, so N commands cost one wait instead of N round trips, and the server (which takes
the commands already waiting as one batch) answers them from one transaction.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pika
from django.conf import settings
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from pika.spec import Basic

from bus import roles
from bus.catalog import EventType, routing_key_for
from bus.connection import connection_parameters, message_properties
from bus.correlation import Trace, current_or_new_correlation_id, get_causation_id
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
    """A client for one thread (pika connections are not thread-safe); see :func:`rpc_client`.

    It calls as ``role`` (bus/roles.py; default: the thread's acting role, which a worker's
    handler thread has), and takes a reply only from the role that serves the command: the
    broker vouches for a reply's user_id, and anyone who saw a request (the audit trail sees
    every one) could otherwise answer it first.
    """

    def __init__(self, role: str | None = None) -> None:
        self.role = role
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        # The calls in flight: call id -> its reply's body, None until it arrives.
        self._replies: dict[str, bytes | None] = {}
        self._missing = 0
        # When the connection last did I/O (monotonic): idle past a heartbeat, it is replaced.
        self._last_used = 0.0
        self.reconnects = 0
        self._role: str | None = None  # the role the open connection is of
        self._user = ""  # its RabbitMQ user: every request's user_id
        self._command = ""  # the command whose replies are awaited

    def _fresh(self) -> bool:
        """Whether the open connection can be trusted with a publish."""
        if (
            self._connection is None
            or self._channel is None
            or not self._connection.is_open
            or not self._channel.is_open
        ):
            return False
        heartbeat = settings.RABBITMQ_HEARTBEAT
        if heartbeat and time.monotonic() - self._last_used >= heartbeat:
            return False  # the broker may have dropped it already; a new one costs a round trip
        try:
            # Reads what is waiting: a connection the broker closed raises here, not mid-call.
            self._connection.process_data_events(time_limit=0)
        except AMQPError:
            return False
        return self._connection.is_open and self._channel.is_open

    def _ensure_channel(self) -> BlockingChannel:
        channel = self._channel
        if channel is None or not self._fresh():
            if self._connection is not None:
                self.reconnects += 1
            self.close()
            self._role = self.role or roles.acting_role()
            self._user = roles.user(self._role or "")
            self._connection = pika.BlockingConnection(connection_parameters(self._role, name="rpc-client"))
            self._channel = channel = self._connection.channel()
            channel.basic_consume(queue=DIRECT_REPLY_TO, on_message_callback=self._on_reply, auto_ack=True)
        self._last_used = time.monotonic()
        return channel

    def _publish(self, command: EventType, requests: list[tuple[str, Any, Envelope]]) -> None:
        channel = self._ensure_channel()
        for call_id, data, envelope in requests:
            channel.basic_publish(
                exchange=command.exchange,
                routing_key=routing_key_for(command, data),
                body=envelope.to_json(),
                properties=message_properties(
                    message_id=envelope.message_id,
                    type=command.name,
                    correlation_id=call_id,
                    timestamp=int(time.time()),
                    reply_to=DIRECT_REPLY_TO,
                    user_id=self._user,
                ),
            )

    def _on_reply(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: pika.BasicProperties, body: bytes
    ) -> None:
        call_id = properties.correlation_id
        refused = roles.reply_refusal(self._command, properties.user_id)
        if refused is not None:
            logger.warning("ignoring an RPC reply: %s", refused, extra={"call_id": call_id})
            return
        if call_id in self._replies and self._replies[call_id] is None:
            self._replies[call_id] = body
            self._missing -= 1
        else:
            logger.info("ignoring a late or duplicate RPC reply", extra={"call_id": call_id})

    def call(self, command: EventType, payload: dict[str, Any], *, timeout: float = 5.0) -> Any:
        """One command: its result, or raise its :class:`RemoteError` (or :class:`RpcTimeout`)."""
        (answer,) = self.call_many(command, [payload], timeout=timeout)
        if isinstance(answer, RemoteError):
            raise answer
        return answer

    def call_many(
        self,
        command: EventType,
        payloads: Sequence[dict[str, Any]],
        *,
        timeout: float = 5.0,
        traces: Sequence[Trace | None] | None = None,
    ) -> list[Any]:
        """Publish every request, then wait for all the replies: per request, in order, its
        result or the :class:`RemoteError` the server answered (returned, not raised).

        :class:`RpcTimeout` if any reply is missing at the deadline (``timeout`` seconds for
        the whole call): some of the commands may have run, so the caller retries them all
        under the same keys. Every payload is validated before anything is sent.

        ``traces``: per payload, the request and message it is sent for (a batch's), where
        they are not the work in hand's.
        """
        correlation_id = current_or_new_correlation_id()
        # A command sent while a message is handled is caused by it (a charge by order.placed).
        causation_id = get_causation_id()
        requests = []
        for index, payload in enumerate(payloads):
            data = command.validate(payload)
            trace = traces[index] if traces else None
            envelope = Envelope(
                type=command.name,
                version=command.version,
                payload=data,
                correlation_id=trace.correlation_id if trace else correlation_id,
                causation_id=trace.causation_id if trace else causation_id,
            )
            requests.append((uuid.uuid4().hex, data, envelope))
        if not requests:
            return []
        try:
            self._replies = {call_id: None for call_id, _, _ in requests}
            self._missing = len(requests)
            self._command = command.name
            try:
                self._publish(command, requests)
            except AMQPError as error:
                # Lost before anything could be answered: once more on a fresh connection.
                logger.warning(
                    "rpc connection lost while publishing %s (%r); publishing again on a new one", command.name, error
                )
                self.close()
                self._publish(command, requests)
            connection = self._connection
            assert connection is not None  # _publish opened it
            deadline = time.monotonic() + timeout
            while self._missing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RpcTimeout(
                        f"{command.name}: {self._missing} of {len(requests)} replies missing after {timeout:g} s"
                    )
                connection.process_data_events(time_limit=min(remaining, 0.25))
            replies = [self._replies[call_id] for call_id, _, _ in requests]
            self._last_used = time.monotonic()
        except AMQPError as error:
            self.close()
            raise RpcTimeout(f"{command.name}: connection lost before the reply ({error!r})") from error
        finally:
            # Replies to these calls that come later are ignored from now on.
            self._replies, self._missing = {}, 0
        return [_answer(body) for body in replies]  # type: ignore[arg-type]

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.close()
            except AMQPError:
                pass
        self._connection = self._channel = None


def _answer(body: bytes) -> Any:
    reply = json.loads(body)
    if not reply.get("ok"):
        error = reply.get("error") or {}
        return RemoteError(str(error.get("code", "error")), str(error.get("message", "")))
    return reply.get("result")


_local = threading.local()


def rpc_client() -> RpcClient:
    """This thread's RPC client, connected on first use and reused after."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = RpcClient()
    return client
