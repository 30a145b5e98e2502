"""The test session's RabbitMQ: a private vhost on the machine's broker, and helpers to look
into its queues."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid

import pika

from bus.handlers import registered
from operations.multiprocess import pid_alive

RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"


def _run_ctl(args: list[str]) -> subprocess.CompletedProcess[str]:
    """rabbitmqctl, tried again on exit 69 ("unavailable"): the CLI reaches the node over Erlang
    distribution, which refuses a connection now and then when many CLI calls run at once."""
    for attempt in range(4):
        result = subprocess.run([RABBITMQCTL, *args], capture_output=True, timeout=60, check=False, text=True)
        if result.returncode != 69 or attempt == 3:
            break
        time.sleep(2.0 * (attempt + 1))
    result.check_returncode()
    return result


def ctl(*args: str) -> None:
    _run_ctl(list(args))


def ctl_output(*args: str) -> str:
    return _run_ctl(["-q", *args]).stdout


# A test session's vhost: ``passline-test-<pid of the session>-<random>``.
SESSION_VHOST = re.compile(r"^passline-test-(\d+)-[0-9a-f]+$")


def session_vhost() -> str:
    """A new vhost for this test session; first, those of sessions on this machine that ended
    without deleting theirs (killed, timed out) are deleted: each holds forty-odd quorum queues
    and their open files, and a broker that runs out of file descriptors refuses every new
    connection, another checkout's included."""
    for name in ctl_output("list_vhosts", "name").split():
        found = SESSION_VHOST.match(name)
        if found and not pid_alive(int(found.group(1))):
            subprocess.run([RABBITMQCTL, "-q", "delete_vhost", name], capture_output=True, timeout=60, check=False)
    return f"passline-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


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
