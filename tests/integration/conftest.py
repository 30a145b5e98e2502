"""A private RabbitMQ node for tests that stop the broker."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pika
import pytest

from consumers.balance import balance_commands
from consumers.billing import billing_order_placed, billing_refunds
from tests.broker import queue_depth
from tests.servers.rabbit_cluster import node_env
from tests.support import InThread, free_port, wait_until

# The session's vhost and the ``bus`` fixture live in tests/conftest.py (browser tests use them too).
__all__ = ["PrivateBroker", "queue_depth"]


class PrivateBroker:
    """A RabbitMQ node of its own (name, ports, data directory, cookie) that a test may stop.

    The machine's shared broker is never touched, so a failing test leaves it running.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="passline-rabbit-"))
        self.port = free_port()
        self.node = f"passline-test-{uuid.uuid4().hex[:8]}@localhost"
        cookie = self.dir / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.env = node_env(home=self.dir, name=self.node, port=self.port, dist_port=free_port(), directory=self.dir)
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _bin(self, name: str) -> str:
        # Debian's /usr/sbin wrappers switch to the rabbitmq user and its cookie; the real
        # scripts run as us, with this node's own HOME and cookie.
        return f"/usr/lib/rabbitmq/bin/{name}"

    def ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [self._bin("rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def answers(self) -> bool:
        try:
            pika.BlockingConnection(pika.URLParameters(self.url + "?connection_attempts=1&socket_timeout=1")).close()
            return True
        except pika.exceptions.AMQPError:
            return False

    def start(self) -> None:
        subprocess.run(
            [self._bin("rabbitmq-server"), "-detached"], env=self.env, check=True, capture_output=True, timeout=60
        )
        # A node boots in 5-15 s on an idle machine; a full suite on two busy cores has taken
        # over 90 s.
        wait_until(self.answers, timeout=180, interval=0.25, what=f"private RabbitMQ node {self.node}")

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        wait_until(self.answers, timeout=60, interval=0.25, what="the private node's app to start")

    def shutdown(self) -> None:
        try:
            self.ctl("stop", timeout=60)
        except (subprocess.SubprocessError, OSError):
            pid = (self.dir / "pid").read_text().strip() if (self.dir / "pid").exists() else ""
            if pid:
                subprocess.run(["kill", "-9", pid], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_broker():
    if not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
        pytest.fail("RabbitMQ's server scripts are missing: install Debian's rabbitmq-server (scripts/setup.sh does).")
    broker = PrivateBroker()
    try:
        broker.start()  # inside: a node that never answered is shut down too, not left running
        yield broker
    finally:
        broker.shutdown()


@pytest.fixture
def payment_workers(run_consumers) -> list[InThread]:
    """The payment chain: the balance worker, and the billing worker's charges and refunds,
    each in a runner of its own as the Procfile runs them (with ``relay``, orders get paid)."""
    return [run_consumers(balance_commands), run_consumers(billing_order_placed, billing_refunds)]
