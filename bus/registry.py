"""The worker registry: every long-running process says, every few seconds, that it is alive.

Each process (a consumer runner, the relay, the scheduler) writes one entry into Redis every
``WORKER_BEAT_SECONDS``: its role, queues, pid, host, when it started, when it last beat, how
many messages it has handled and its current lag. The entry lives three beats, so a process that
dies (even by SIGKILL) drops out by itself; one that stops cleanly removes its entry at once.
Entries are keys of their own (``<REDIS_PREFIX>:workers:<id>``) indexed by a sorted set
(``<REDIS_PREFIX>:workers``, scored by the last beat), so reading the registry never scans the
keyspace.

A beat runs on a thread of its own and never blocks the work: Redis has short timeouts
(bus/redis_hints.py), and a failed beat is logged, not raised; the next one tries again.

Lag means, for a consumer, the age of the oldest message it holds (in hand or prefetched and
waiting; 0 when it holds none), and for the relay the age of the oldest unsent outbox row.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from bus import roles
from bus.models import OutboxMessage
from bus.redis_hints import hint_client

if TYPE_CHECKING:
    from bus.relay import OutboxRelay
    from bus.runner import WorkerRunner

logger = logging.getLogger(__name__)

# An entry outlives this many missed beats, then expires.
BEATS_TO_LIVE = 3
SCHEDULER = "scheduler"


def beat_seconds() -> float:
    return float(settings.WORKER_BEAT_SECONDS)


def ttl_seconds() -> float:
    return beat_seconds() * BEATS_TO_LIVE


def _index_key() -> str:
    return f"{settings.REDIS_PREFIX}:workers"


def _entry_key(entry_id: str) -> str:
    return f"{settings.REDIS_PREFIX}:workers:{entry_id}"


@dataclass
class Entry:
    """One live process, as it last described itself."""

    id: str
    role: str
    queues: list[str]
    pid: int
    host: str
    started: float  # Unix time
    beat: float  # Unix time of the last beat
    handled: int = 0
    lag: float | None = None  # seconds; None: unknown (its database was away)
    unacked: dict[str, int] = field(default_factory=dict)  # deliveries held, per queue

    @property
    def beat_age(self) -> float:
        return max(0.0, time.time() - self.beat)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "beat_age": round(self.beat_age, 3)}


Status = Callable[[], dict[str, Any]]


class Heartbeat:
    """Writes this process's entry every beat on a daemon thread until :meth:`stop`."""

    def __init__(self, *, role: str, queues: Iterable[str] = (), status: Status | None = None):
        self.role = role
        self.queues = list(queues)
        self.status = status or dict
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{role}:{self.host}:{self.pid}"
        self.started = time.time()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{role}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and remove the entry (a clean stop is no dead worker)."""
        self._stopping.set()
        self._thread.join(timeout=beat_seconds() + 2)
        try:
            client = hint_client()
            client.delete(_entry_key(self.id))
            client.zrem(_index_key(), self.id)
        except Exception as error:  # noqa: BLE001 - the entry expires by itself
            logger.warning("could not remove the registry entry %s: %r", self.id, error)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.beat()
                self._stopping.wait(beat_seconds())
        finally:
            connection.close()  # the relay's status reads the outbox on this thread

    def beat(self) -> None:
        """Write the entry now. Never raises: a beat must not take its process down."""
        try:
            status = self.status()
            entry = Entry(
                id=self.id,
                role=self.role,
                queues=self.queues,
                pid=self.pid,
                host=self.host,
                started=self.started,
                beat=time.time(),
                handled=int(status.get("handled", 0)),
                lag=status.get("lag"),
                unacked=dict(status.get("unacked", {})),
            )
            ttl = ttl_seconds()
            pipe = hint_client().pipeline(transaction=False)
            pipe.set(_entry_key(self.id), json.dumps(asdict(entry)), px=int(ttl * 1000))
            pipe.zadd(_index_key(), {self.id: entry.beat})
            pipe.zremrangebyscore(_index_key(), "-inf", entry.beat - ttl)
            pipe.pexpire(_index_key(), int(ttl * 1000))
            pipe.execute()
        except Exception as error:  # noqa: BLE001 - logged; the next beat tries again
            logger.warning("heartbeat of %s failed: %r", self.id, error)


def entries() -> list[Entry]:
    """Every live entry, by role and host (raises redis.RedisError when Redis is away)."""
    client = hint_client()
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in client.zrangebyscore(_index_key(), "-inf", "+inf")]
    if not ids:
        return []
    found = []
    for raw in client.mget([_entry_key(i) for i in ids]):
        if raw is None:
            continue  # expired: a dead process
        try:
            found.append(Entry(**json.loads(raw)))
        except (TypeError, ValueError) as error:
            logger.warning("an unreadable registry entry: %r", error)
    return sorted(found, key=lambda e: (e.role, e.host, e.pid))


# --- what each kind of process reports -----------------------------------------------------------


def outbox_lag() -> float | None:
    """Seconds since the oldest unsent outbox row was written (0 with none); None when the
    database does not answer."""
    try:
        close_old_connections()
        # The oldest unsent row is the one with the lowest id (the outbox_unsent index).
        oldest = (
            OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id").values_list("created_at", flat=True)[:1]
        )
        created = next(iter(oldest), None)
    except DatabaseError as error:
        logger.warning("could not read the outbox's age: %r", error)
        connection.close()
        return None
    if created is None:
        return 0.0
    return max(0.0, (timezone.now() - created).total_seconds())


def runner_heartbeat(runner: WorkerRunner) -> Heartbeat:
    """The heartbeat of a consumer runner (bus/runner.py), started."""
    queues = [c.queue for c in runner.consumers]
    role = runner.role
    if role is None:
        try:
            role = roles.role_of_queues(queues)
        except roles.RoleError:
            role = runner.name

    def status() -> dict[str, Any]:
        # Copies first: the runner's thread changes these while this one reads.
        held = [*list(runner.in_hand), *list(runner._inbox)]
        stamps = [d.properties.timestamp for d in held if isinstance(d.properties.timestamp, int)]
        stamps = [s for s in stamps if s > 0]
        return {
            "handled": runner.handled,
            "lag": max(0.0, time.time() - min(stamps)) if stamps else 0.0,
            "unacked": dict(Counter(d.source or d.queue for d in held)),
        }

    return Heartbeat(role=role, queues=queues, status=status).start()


def relay_heartbeat(relay: OutboxRelay) -> Heartbeat:
    """The heartbeat of the outbox relay (bus/relay.py), started. Its lag reads the database on
    the heartbeat's own thread (its own connection)."""

    def status() -> dict[str, Any]:
        return {"handled": relay.published, "lag": outbox_lag()}

    return Heartbeat(role=roles.RELAY, status=status).start()
