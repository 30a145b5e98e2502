"""A private three-node RabbitMQ cluster on this one host, for fault tests and the chaos soak.

Each node has its own name, AMQP and distribution ports and data directory; the nodes share one
private Erlang cookie (one HOME for the whole cluster), so the machine's own broker is never
reached or disturbed. Debian's /usr/sbin wrappers switch to the rabbitmq user and its cookie;
the real scripts in /usr/lib/rabbitmq/bin run as us.

The module needs no Django: the soak imports it before settings are configured.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

BIN = Path("/usr/lib/rabbitmq/bin")

# How long a node may take to boot: 5-15 s on an idle machine, far more while three nodes boot at
# once on two busy cores.
BOOT_TIMEOUT = 180.0

# Seconds: a dead or frozen peer is noticed after 0.75-1.25 of this (the Erlang default is 60).
# Lower would risk false partitions on two loaded cores.
NET_TICKTIME = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def node_env(*, home: Path, name: str, port: int, dist_port: int, directory: Path) -> dict[str, str]:
    """The environment that runs RabbitMQ's scripts for a private node: its own name, ports,
    configuration and data under ``directory``, its cookie in ``home``."""
    return {
        **os.environ,
        "HOME": str(home),
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
        "RABBITMQ_LOG_BASE": str(directory / "log"),
        "RABBITMQ_PID_FILE": str(directory / "pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
        # Erlang distribution on loopback only, like the machine's own node.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


class RabbitNode:
    """One node of a :class:`RabbitCluster`: boot, kill -9, freeze and thaw it."""

    def __init__(self, cluster: RabbitCluster, index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.name = f"{cluster.prefix}-{index}@localhost"
        self.port = _free_port()
        self.dist_port = _free_port()
        self.dir = cluster.dir / f"node{index}"
        self.dir.mkdir()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            # The side of a partition with fewer than half the nodes pauses itself (it closes its
            # clients' connections, so they move to the majority) and comes back when it sees
            # the majority again.
            "cluster_partition_handling = pause_minority\n"
            f"net_ticktime = {NET_TICKTIME}\n"
            # The node boots into a cluster whose other members may still be booting.
            "mnesia_table_loading_retry_timeout = 10000\n"
            "mnesia_table_loading_retry_limit = 30\n"
        )
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.env = node_env(
            home=cluster.dir, name=self.name, port=self.port, dist_port=self.dist_port, directory=self.dir
        )
        self._pid: int | None = None
        self.paused = False

    def __repr__(self) -> str:
        return f"<RabbitNode {self.index} {self.name} :{self.port}>"

    # --- commands -------------------------------------------------------------------------------

    def run(self, script: str, *args: str, timeout: float = 60, check: bool = True) -> str:
        """One of RabbitMQ's CLI scripts against this node; its standard output."""
        result = subprocess.run(
            [str(BIN / script), "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
        return result.stdout

    def ctl(self, *args: str, timeout: float = 60) -> str:
        return self.run("rabbitmqctl", *args, timeout=timeout)

    # --- state ----------------------------------------------------------------------------------

    def answers(self) -> bool:
        """The node takes an AMQP connection (its app runs and it is not paused by pause_minority)."""
        if self.paused:
            return False
        try:
            params = pika.URLParameters(
                self.url + "?connection_attempts=1&socket_timeout=2&blocked_connection_timeout=2"
            )
            pika.BlockingConnection(params).close()
            return True
        except pika.exceptions.AMQPError:
            return False

    @property
    def pid(self) -> int | None:
        """The OS process id of the node's beam, while it runs."""
        if self._pid is None:
            try:
                self._pid = int((self.dir / "pid").read_text().strip())
            except (OSError, ValueError):
                # Booting, before it wrote its pid file: this node's beam, found by its unique name.
                self._pid = self._beam_by_name()
        return self._pid

    def _beam_by_name(self) -> int | None:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if not argv[0].endswith(b"beam.smp"):
                    continue
                environ = (proc / "environ").read_bytes().split(b"\0")
            except OSError:  # gone, or not ours
                continue
            if f"RABBITMQ_NODENAME={self.name}".encode() in environ:
                return int(proc.name)
        return None

    def running(self) -> bool:
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    # --- faults ---------------------------------------------------------------------------------

    def boot(self) -> None:
        """Start the node's beam in the background; :meth:`wait` waits until it answers."""
        (self.dir / "pid").unlink(missing_ok=True)
        self._pid = None
        self.paused = False
        subprocess.run(
            [str(BIN / "rabbitmq-server"), "-detached"], env=self.env, check=True, capture_output=True, timeout=60
        )

    def wait(self, timeout: float = BOOT_TIMEOUT) -> None:
        try:
            _wait_until(self.answers, timeout=timeout, what=f"RabbitMQ node {self.name} to answer")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.diagnosis()}") from None

    def diagnosis(self) -> str:
        """Whether the beam runs, and the end of the node's log: what a failed wait reports."""
        logs = sorted((self.dir / "log").glob("*.log"), key=lambda path: path.stat().st_mtime)
        tail = logs[-1].read_text(errors="replace").splitlines()[-25:] if logs else ["(no log)"]
        return f"{self.name}: beam {'running' if self.running() else 'not running'}; log:\n" + "\n".join(tail)

    def start(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Boot the node (again, after a kill) and wait until it answers. Its data directory
        remembers the cluster, so it rejoins by itself and catches up its queue replicas."""
        self.boot()
        self.wait(timeout)

    def kill(self) -> None:
        """kill -9 the beam, as when the machine dies: no goodbye to peers or clients."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_until(lambda: not self.running(), timeout=30, what=f"{self.name}'s beam to die")
        self.paused = False
        self._pid = None
        (self.dir / "pid").unlink(missing_ok=True)

    def pause(self) -> None:
        """SIGSTOP the beam: the node stops answering peers and clients, its sockets stay open
        (to the others it looks like a partition; they notice within about NET_TICKTIME)."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        """SIGCONT. A node frozen for longer than NET_TICKTIME may wake up on the wrong side of
        a partition the others recorded (it reconnects before it notices they had gone, so
        pause_minority never pauses it): :meth:`RabbitCluster.formed` stays False, and
        :meth:`RabbitCluster.restart_partitioned` brings it back."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def partition(self) -> None:
        """Cut the node off from the other nodes, as a network partition would, while clients
        can still reach it. Erlang distribution refuses a peer whose cookie differs: the node
        takes another cookie for each peer and drops its connections to them (the CLI, on the
        shared cookie, still gets in). The others see it go at once; pause_minority makes it
        close its listeners until it sees the majority again."""
        self._eval(
            "[erlang:set_cookie(P, 'passline-partitioned') || P <- Peers], [erlang:disconnect_node(P) || P <- Peers], ok."
        )

    def heal(self) -> None:
        """End :meth:`partition`: the node takes the shared cookie again and reaches its peers."""
        self._eval(
            "C = erlang:get_cookie(), [erlang:set_cookie(P, C) || P <- Peers], [net_adm:ping(P) || P <- Peers], ok."
        )

    def _eval(self, code: str) -> None:
        peers = ", ".join(f"'{node.name}'" for node in self.cluster.nodes if node is not self)
        self.ctl("eval", f"Peers = [{peers}], {code}")


class RabbitCluster:
    """``size`` RabbitMQ nodes of their own joined into one cluster."""

    def __init__(self, size: int = 3) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="passline-ha-rabbit-"))
        self.prefix = f"passline-ha-{uuid.uuid4().hex[:8]}"
        cookie = self.dir / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        self.nodes = [RabbitNode(self, i) for i in range(size)]

    def __repr__(self) -> str:
        return f"<RabbitCluster {self.prefix} ports {[node.port for node in self.nodes]}>"

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def ctl(self, i: int, *args: str, timeout: float = 60) -> str:
        """rabbitmqctl against node ``i``; its standard output."""
        return self.nodes[i].ctl(*args, timeout=timeout)

    def start(self) -> None:
        """Boot every node and join nodes 1.. to node 0; return when every node answers.
        A node that fails to boot leaves nothing running: everything is shut down."""
        try:
            for node in self.nodes:
                node.boot()
            for node in self.nodes:
                node.wait()
            first = self.nodes[0].name
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first)
                node.ctl("start_app")
            for node in self.nodes:
                node.wait()
            _wait_until(self.formed, timeout=60, what="every node to see the whole cluster")
        except BaseException:
            self.shutdown()
            raise

    def start_all(self) -> None:
        """Boot again every node that is not running (after a full outage) and wait for all. They
        boot at once: a node killed with the others waits for its peers' tables before it answers."""
        down = [node for node in self.nodes if not node.running()]
        for node in down:
            node.boot()
        for node in self.nodes:
            try:
                node.wait(BOOT_TIMEOUT / 2)
            except AssertionError:
                # A beam that gave up booting (its peers' tables did not come in time, or it
                # crashed) is booted once more, now that the others run; one still booting is
                # given the rest of the time.
                if not node.running():
                    node.boot()
                node.wait(BOOT_TIMEOUT / 2)

    def formed(self) -> bool:
        """Every node runs, node 0 sees all of them as running members, and no partition is left."""
        try:
            status = json.loads(self.nodes[0].run("rabbitmqctl", "cluster_status", "--formatter", "json", timeout=30))
        except (subprocess.SubprocessError, ValueError):
            return False
        healed = not status.get("partitions")
        return healed and sorted(status.get("running_nodes", [])) == sorted(node.name for node in self.nodes)

    def describe(self) -> str:
        """Each node's state as it sees it, one line each (for a failure's message)."""
        lines = []
        for node in self.nodes:
            state = "paused" if node.paused else "running" if node.running() else "down"
            seen = ""
            if state == "running":
                try:
                    status = json.loads(node.run("rabbitmqctl", "cluster_status", "--formatter", "json", timeout=20))
                    running = sorted(name.split("@")[0].rsplit("-", 1)[-1] for name in status.get("running_nodes", []))
                    seen = f" sees running {running}, partitions {status.get('partitions')}"
                except (subprocess.SubprocessError, ValueError) as error:
                    seen = f" cluster_status failed: {str(error)[:200]}"
            lines.append(f"node {node.index} ({node.name}, :{node.port}) {state}, answers {node.answers()}{seen}")
        return "\n".join(lines)

    def restart_partitioned(self) -> list[int]:
        """Restart the app of every node outside the largest group of nodes that see each other
        running (what an operator does after a split that partition handling did not heal);
        the indexes restarted."""
        names = {node.name: node.index for node in self.nodes}
        views: dict[int, frozenset[int]] = {}
        for node in self.nodes:
            if node.paused or not node.running():
                continue
            try:
                status = json.loads(node.run("rabbitmqctl", "cluster_status", "--formatter", "json", timeout=30))
            except (subprocess.SubprocessError, ValueError):
                continue
            views[node.index] = frozenset(names[n] for n in status.get("running_nodes", []) if n in names)
        if not views:
            return []
        majority = max(views.values(), key=len)
        cut = sorted(index for index in views if index not in majority)
        for index in cut:
            self.ctl(index, "stop_app")
            self.ctl(index, "start_app")
            self.nodes[index].wait()
        return cut

    def answering(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.answers()]

    def _queue_info(self, queue: str, vhost: str, *items: str) -> dict[str, Any]:
        """``rabbitmqctl list_queues`` items of ``queue``, asked of the first node that answers."""
        last: Exception | None = None
        for node in self.nodes:
            if node.paused or not node.running():
                continue
            try:
                rows = json.loads(
                    node.ctl("list_queues", "-p", vhost, "name", *items, "--formatter", "json", timeout=30)
                )
            except (subprocess.SubprocessError, ValueError) as error:
                last = error
                continue
            for row in rows:
                if row.get("name") == queue:
                    return row
        raise LookupError(f"no node answers about queue {queue!r} on vhost {vhost!r}") from last

    def members_of(self, queue: str, vhost: str = "/") -> list[int]:
        """Indexes of the nodes holding a replica of the quorum queue ``queue``."""
        names = {node.name: node.index for node in self.nodes}
        return sorted(names[member] for member in self._queue_info(queue, vhost, "members")["members"])

    def leader_of(self, queue: str, vhost: str = "/") -> int:
        """Index of the node that holds the leader of the quorum queue ``queue``."""
        names = {node.name: node.index for node in self.nodes}
        last: Exception | None = None
        for node in self.nodes:
            if node.paused or not node.running():
                continue
            try:
                rows = json.loads(
                    node.ctl("list_queues", "-p", vhost, "name", "leader", "--formatter", "json", timeout=30)
                )
            except (subprocess.SubprocessError, ValueError) as error:
                last = error
                continue
            for row in rows:
                if row.get("name") == queue and row.get("leader") in names:
                    return names[row["leader"]]
        raise LookupError(f"no leader found for quorum queue {queue!r} on vhost {vhost!r}") from last

    def shutdown(self) -> None:
        """Kill every node and remove the data directories. Safe to call more than once, and
        after a failed start: a throwaway cluster needs no graceful stop."""
        for node in self.nodes:
            pid = node.pid
            if pid is None:
                continue
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
        deadline = time.monotonic() + 30
        while any(node.running() for node in self.nodes) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """A private three-node cluster for the tests of one module, shut down after them (also when
    a test failed). A test that kills or pauses nodes restarts them before it ends."""
    if not (BIN / "rabbitmq-server").exists():
        pytest.fail("RabbitMQ's server scripts are missing: install Debian's rabbitmq-server (scripts/setup.sh does).")
    cluster = RabbitCluster(size=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.shutdown()
