"""The chaos soak's fault scheduler: one fault at a time, at random (seeded) moments, each
undone as an operator or a supervisor would undo it, every one logged with its times.

Faults (``KINDS``):

* ``worker`` — kill -9 a worker of the Procfile (any role but the web and the relay, chosen
  at random), started again 1-3 s later, as supervisord or compose's restart policy does;
* ``relay`` — the same for the outbox relay;
* ``web`` — kill -9 one of the daphnes; started again 2-5 s later on its port (the customers
  go on with the other one meanwhile);
* ``broker`` — kill -9 a RabbitMQ node (a third of the cluster; the whole broker when it has
  one node), booted again 10-25 s later;
* ``redis`` — SIGSTOP Redis for 2-6 s (the channel layer, cache and throttles stall), SIGCONT;
* ``db`` — KILL every MariaDB connection the stack's processes hold to the soak's database,
  from a connection of its own, as a restart or failover drops them (the server stays up).

Beside the faults a watchdog restarts any process of the stack that exits by itself (what
supervisord does under ``make run``), and records it: a process that dies of a fault it was not
given is a finding.
"""

from __future__ import annotations

import random
import threading
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.stack import Stack

KINDS = ("worker", "relay", "web", "broker", "redis", "db")


@dataclass
class Fault:
    kind: str
    target: str
    at: float  # time.time() of the injection
    restored_at: float = 0.0
    detail: str = ""

    def as_dict(self, started: float) -> dict[str, Any]:
        return {**asdict(self), "at_s": round(self.at - started, 1), "down_s": round(self.restored_at - self.at, 1)}


@dataclass
class Exit:
    name: str
    at: float
    returncode: int | None


@dataclass
class Scheduler:
    """Injects faults from ``kinds`` until stopped, each ``interval`` (low, high) seconds after
    the last one was undone."""

    stack: Stack
    redis: Any  # tests.private_redis.PrivateRedis
    brokers: Any  # tests.servers.rabbit_cluster.RabbitCluster
    database: dict[str, Any]  # MySQLdb.connect arguments of the stack's database user
    seed: int
    kinds: tuple[str, ...]
    interval: tuple[float, float] = (20.0, 40.0)
    started: float = field(default_factory=time.time)
    faults: list[Fault] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)  # nosec B311 - a reproducible soak, not a secret
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # the watchdog and a fault never restart one process at once
        self.busy: set[str] = set()  # processes a fault has down on purpose
        self.thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)
        self.watchdog = threading.Thread(target=self._watch, name="chaos-watchdog", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.watchdog.start()

    def stop(self) -> None:
        """No new fault; the one under way is undone first. Returns once nothing is down."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join()

    def close(self) -> None:
        self.stopping.set()
        if self.watchdog.is_alive():
            self.watchdog.join(timeout=10)

    # --- the schedule -------------------------------------------------------------------------

    def _run(self) -> None:
        if not self.kinds:
            return
        # The pause counts from the end of the last fault: a long one (a broker node's boot) is
        # never followed at once by the next, and each fault's convergence can be seen alone.
        while not self.stopping.wait(self.random.uniform(*self.interval)):
            kind = self.random.choice(self.kinds)
            try:
                self.inject(kind)
            except Exception as error:  # noqa: BLE001 - a failed fault is reported, the soak goes on
                self.errors.append(f"{kind}: {type(error).__name__} {error}")
                print(f"  fault {kind} failed: {type(error).__name__} {error}", flush=True)

    def inject(self, kind: str) -> Fault:
        action = getattr(self, f"_{kind}")
        fault = Fault(kind=kind, target="", at=time.time())
        self.faults.append(fault)
        action(fault)
        fault.restored_at = time.time()
        print(
            f"  {time.strftime('%H:%M:%S')} +{fault.at - self.started:6.1f} s  {kind:<6} {fault.target:<16} "
            f"{fault.detail} (back after {fault.restored_at - fault.at:.1f} s)",
            flush=True,
        )
        return fault

    def _pause(self, low: float, high: float) -> None:
        time.sleep(self.random.uniform(low, high))

    # --- the faults ---------------------------------------------------------------------------

    def _kill_process(self, fault: Fault, name: str, down: tuple[float, float]) -> None:
        fault.target = name
        with self.lock:
            self.busy.add(name)
        try:
            self.stack.kill(name)
            fault.detail = "kill -9"
            self._pause(*down)
            with self.lock:
                self.stack.restart(name)
        finally:
            with self.lock:
                self.busy.discard(name)

    def _worker(self, fault: Fault) -> None:
        names = [n for n in self.stack.commands if not n.startswith("web-") and n != "relay"]
        self._kill_process(fault, self.random.choice(sorted(names)), (1, 3))

    def _relay(self, fault: Fault) -> None:
        self._kill_process(fault, "relay", (1, 3))

    def _web(self, fault: Fault) -> None:
        names = [n for n in self.stack.commands if n.startswith("web-")]
        self._kill_process(fault, self.random.choice(sorted(names)), (2, 5))

    def _broker(self, fault: Fault) -> None:
        up = [node for node in self.brokers.nodes if node.running()]
        node = self.random.choice(up)
        fault.target = f"rabbit-{node.index}"
        node.kill()
        fault.detail = f"kill -9 (1 of {len(self.brokers.nodes)} nodes)"
        self._pause(10, 25)
        node.start()

    def _redis(self, fault: Fault) -> None:
        fault.target = "redis"
        self.redis.stall()
        try:
            seconds = self.random.uniform(2, 6)
            fault.detail = f"SIGSTOP {seconds:.1f} s"
            time.sleep(seconds)
        finally:
            self.redis.resume()

    def _db(self, fault: Fault) -> None:
        import MySQLdb

        fault.target = "mariadb"
        with closing(MySQLdb.connect(**self.database, autocommit=True)) as admin, admin.cursor() as cursor:
            cursor.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s AND DB = %s AND ID <> CONNECTION_ID()",
                [self.database["user"], self.database["database"]],
            )
            ids = [row[0] for row in cursor.fetchall()]
            killed = 0
            for connection_id in ids:
                try:
                    cursor.execute(f"KILL CONNECTION {int(connection_id)}")
                    killed += 1
                except MySQLdb.OperationalError:  # gone by itself meanwhile
                    pass
        fault.detail = f"KILL {killed} connections"

    # --- the watchdog -------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self.stopping.wait(0.5):
            self.check()

    def check(self) -> None:
        """Start again every process that exited without a fault taking it down."""
        with self.lock:
            for name, process in list(self.stack.named.items()):
                if name in self.busy or process.poll() is None:
                    continue
                self.exits.append(Exit(name, time.time(), process.returncode))
                print(f"  {time.strftime('%H:%M:%S')} {name} exited by itself ({process.returncode}); restarted")
                try:
                    self.stack.restart(name)
                except SystemExit as error:
                    self.errors.append(f"restart of {name}: {error}")

    def report(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for fault in self.faults:
            by_kind[fault.kind] = by_kind.get(fault.kind, 0) + 1
        return {
            "seed": self.seed,
            "kinds": list(self.kinds),
            "interval_s": list(self.interval),
            "injected": len(self.faults),
            "by_kind": by_kind,
            "faults": [fault.as_dict(self.started) for fault in self.faults],
            "exited_by_themselves": [
                {"process": e.name, "at_s": round(e.at - self.started, 1), "returncode": e.returncode}
                for e in self.exits
            ],
            "errors": self.errors,
        }
