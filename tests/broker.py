"""The test session's RabbitMQ: a private vhost on the machine's broker, and helpers to look
into its queues."""

from __future__ import annotations

import shutil
import subprocess
import time

import pika

from bus.handlers import registered

RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"


def ctl(*args: str) -> None:
    """rabbitmqctl, tried again on exit 69 ("unavailable"): the CLI reaches the node over Erlang
    distribution, which refuses a connection now and then when many CLI calls run at once."""
    for attempt in range(4):
        result = subprocess.run([RABBITMQCTL, *args], capture_output=True, timeout=60, check=False)
        if result.returncode != 69 or attempt == 3:
            break
        time.sleep(2.0 * (attempt + 1))
    result.check_returncode()


def purge_all(url: str) -> None:
    """Empty every queue of the registered consumers on the vhost of ``url``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for consumer in registered().values():
            if consumer.consume_from is not None:
                continue
            queues = [consumer.queue, consumer.dead_letter_queue]
            if consumer.delay_seconds:
                queues.append(consumer.delay_queue)
            queues += [consumer.retry_queue(i) for i in range(1, len(consumer.retry_delays) + 1)]
            for queue in queues:
                channel.queue_purge(queue)
    finally:
        connection.close()


def queue_depth(url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of ``queue``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        result = connection.channel().queue_declare(queue=queue, passive=True)
        return result.method.message_count, result.method.consumer_count
    finally:
        connection.close()
