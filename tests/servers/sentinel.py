"""A private Redis behind Sentinel: a master, one replica and three sentinels, each
``redis-server`` on a free port with its own directory (the machine's Redis on 6379 is never
touched). The sentinels notice a dead master after ``DOWN_AFTER_MS`` and promote the replica.

``redis_sentinel`` is the servers alone; ``on_sentinel`` also points this test process (channel
layer, cache and sessions, every direct client) at them, as ``REDIS_SENTINELS`` does.
"""

from __future__ import annotations

import copy
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
from channels.layers import channel_layers

from bus import redis_hints
from passline import breakers
from tests.support import free_port, wait_until

MASTER_NAME = "passline-test"
# A master that does not answer for this long is down for a sentinel; two of three agreeing
# (the quorum) start a failover.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
QUORUM = 2


class RedisSentinel:
    """Five ``redis-server`` processes: ``master``, ``replica`` and three sentinels."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="passline-sentinel-"))
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # --- addresses -------------------------------------------------------------------------

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    def sentinels_setting(self) -> str:
        """The value of ``REDIS_SENTINELS`` for a process that should use these servers."""
        return ",".join(f"{host}:{port}" for host, port in self.sentinels)

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)

    def master_address(self) -> tuple[str, int] | None:
        """Where the first sentinel that answers says the master is now."""
        for port in self.sentinel_ports:
            if f"sentinel-{port}" not in self.procs:
                continue
            try:
                with self.client(port) as sentinel:
                    found = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            except redis.RedisError:
                continue
            if found:
                return str(found[0].decode()), int(found[1])
        return None

    # --- life --------------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._start_server("master", self.master_port)
            self._start_server("replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
            wait_until(self._replica_in_sync, timeout=30, what="the replica to sync with the master")
            for port in self.sentinel_ports:
                self._start_sentinel(port)
            wait_until(
                self._sentinels_see_everyone, timeout=30, what="the sentinels to find the replica and each other"
            )
        except BaseException:
            self.shutdown()
            raise

    def _start_server(self, name: str, port: int, *args: str) -> None:
        data = self.dir / name
        data.mkdir(exist_ok=True)
        self.procs[name] = self._spawn(
            name,
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
            *args,
        )
        wait_until(lambda: self._answers(port), timeout=20, what=f"the private Redis {name} on port {port}")

    def _start_sentinel(self, port: int) -> None:
        name = f"sentinel-{port}"
        data = self.dir / name
        data.mkdir(exist_ok=True)
        config = data / "sentinel.conf"  # a sentinel rewrites its own config: one file each
        config.write_text(
            f"port {port}\n"
            "bind 127.0.0.1\n"
            f"dir {data}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self.procs[name] = self._spawn(name, "redis-server", str(config), "--sentinel")
        wait_until(lambda: self._answers(port), timeout=20, what=f"the private sentinel on port {port}")

    def _spawn(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        with (self.dir / f"{name}.log").open("wb") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def _answers(self, port: int) -> bool:
        try:
            with self.client(port) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _replica_in_sync(self) -> bool:
        with self.client(self.replica_port) as replica:
            return replica.info("replication").get("master_link_status") == "up"

    def _sentinels_see_everyone(self) -> bool:
        for port in self.sentinel_ports:
            with self.client(port) as sentinel:
                replicas = sentinel.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                others = sentinel.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)
            if len(replicas) < 1 or len(others) < len(self.sentinel_ports) - 1:
                return False
        return True

    # --- faults ------------------------------------------------------------------------------

    def kill_master(self) -> tuple[str, int]:
        """``kill -9`` the server that is the master now; returns its address."""
        address = self.master_address()
        assert address is not None, "no sentinel names a master"
        name = next(n for n in ("master", "replica") if self._port_of(n) == address[1])
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        return address

    def wait_for_new_master(self, old: tuple[str, int], timeout: float = 30.0) -> tuple[tuple[str, int], float]:
        """Wait until a sentinel names another master than ``old`` and it answers as a master;
        returns its address and the ``time.monotonic()`` at which that was first seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            address = self.master_address()
            if address is not None and address != old:
                return address, time.monotonic()
            time.sleep(0.02)
        raise AssertionError(f"no new master within {timeout:g} s; logs in {self.dir}")

    def _port_of(self, name: str) -> int:
        return self.master_port if name == "master" else self.replica_port

    def shutdown(self) -> None:
        """Stop every server (also after a failed start) and delete their directories."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_sentinel():
    """A private master, replica and three sentinels for one test, always stopped after it."""
    servers = RedisSentinel()
    servers.start()
    try:
        yield servers
    finally:
        servers.shutdown()


@pytest.fixture
def on_sentinel(redis_sentinel, settings, monkeypatch):
    """This test process on the private Sentinel servers: channel layer (db 0), cache and
    sessions (db 1), hints and breakers, exactly as ``REDIS_SENTINELS`` sets them up."""
    settings.REDIS_SENTINELS = redis_sentinel.sentinels
    settings.REDIS_SENTINEL_MASTER = MASTER_NAME
    settings.REDIS_URL = "redis://sentinel/0"  # behind Sentinel only the database number counts
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    for host in layers["default"]["CONFIG"]["hosts"]:
        host.update(address="redis://sentinel/0", sentinels=redis_sentinel.sentinels, master_name=MASTER_NAME)
    settings.CHANNEL_LAYERS = layers
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = "redis://sentinel/1"
    caches["default"]["OPTIONS"] = {"pool_class": "bus.redis_clients.SentinelPool"}
    settings.CACHES = caches
    monkeypatch.setattr(redis_hints, "_client", None)
    monkeypatch.setattr(breakers, "_client", None)
    breakers._local.__dict__.pop("breakers", None)
    channel_layers.backends.clear()
    try:
        yield redis_sentinel
    finally:
        channel_layers.backends.clear()
        monkeypatch.setattr(redis_hints, "_client", None)
        monkeypatch.setattr(breakers, "_client", None)
        breakers._local.__dict__.pop("breakers", None)
