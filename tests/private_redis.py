"""A private Redis server for tests that stall, restart or cut off Redis.

The machine's shared Redis is never touched: the fixture starts ``redis-server`` on a port of
its own (nothing saved to disk) and points the channel layer, the cache (sessions) and the
hints client at it for the test.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import tempfile

import pytest
import redis
from channels.layers import channel_layers

from bus import redis_hints
from tests.support import free_port, wait_until


class PrivateRedis:
    """A ``redis-server`` child process that a test may stop, stall (SIGSTOP) or restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="passline-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=20, interval=0.05, what=f"the private Redis on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stalled server cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port: every client is cut off, every key gone."""
        self.stop()
        self.start()

    def stall(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing is answered."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill_clients(self) -> int:
        """Drop every normal client connection, as ``CLIENT KILL TYPE normal`` does."""
        with self.client() as admin:
            return int(admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))


@pytest.fixture
def private_redis(settings, monkeypatch):
    """A private Redis for one test; the channel layer (db 0), cache and sessions (db 1) and the
    hints use it."""
    server = PrivateRedis()
    server.start()
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = server.url(0)
    settings.CHANNEL_LAYERS = layers
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = server.url(1)
    settings.CACHES = caches
    settings.REDIS_URL = server.url(0)
    monkeypatch.setattr(redis_hints, "_client", None)
    channel_layers.backends.clear()
    try:
        yield server
    finally:
        server.stop()
        channel_layers.backends.clear()
        monkeypatch.setattr(redis_hints, "_client", None)
