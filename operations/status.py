"""What an operator looks at: the worker registry, queue depths, the outbox's backlog, dead
letters and the circuit breakers, in one snapshot (``manage.py workers``, the operations page,
its JSON and the registry's gauges read it).

Each part is read on its own: RabbitMQ away leaves the registry and the outbox readable, and the
part that failed says why under ``errors``.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pika
from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from pika.exceptions import ChannelClosedByBroker

from bus import registry, roles
from bus.handlers import registered
from bus.models import DeadLetter, OutboxMessage
from bus.topology import PARKING_QUEUE
from operations.readiness import broker_parameters

logger = logging.getLogger(__name__)

# Seconds the depths may take to read before the operations page gives up on them.
BROKER_TIMEOUT = 3.0


def expected_roles() -> list[str]:
    """The roles of the Procfile's long-running processes but web: every worker role, the
    relay and the scheduler. One with no live registry entry is flagged."""
    workers = [role.name for role in roles.ROLES.values() if role.queues]
    return sorted({*workers, roles.RELAY, registry.SCHEDULER})


@dataclass
class RoleSummary:
    role: str
    alive: int
    max_beat_age: float | None  # seconds, of its stalest live copy

    def as_json(self) -> dict[str, Any]:
        return {"role": self.role, "alive": self.alive, "max_beat_age": self.max_beat_age}


def role_summaries(entries: list[registry.Entry]) -> list[RoleSummary]:
    """Every expected role (and any other role that beats), with its live copies."""
    by_role: dict[str, list[registry.Entry]] = defaultdict(list)
    for entry in entries:
        by_role[entry.role].append(entry)
    names = sorted({*expected_roles(), *by_role})
    return [
        RoleSummary(
            role=name,
            alive=len(by_role[name]),
            max_beat_age=round(max(e.beat_age for e in by_role[name]), 3) if by_role[name] else None,
        )
        for name in names
    ]


def queues_to_watch() -> list[tuple[str, str]]:
    """(queue, kind) of every work queue, its dead-letter queue, and the parking queue."""
    watched: list[tuple[str, str]] = []
    for consumer in sorted(registered().values(), key=lambda c: c.queue):
        if consumer.consume_from is None:
            watched += [(consumer.queue, "work"), (consumer.dead_letter_queue, "dead")]
    return [*watched, (PARKING_QUEUE, "parked")]


def queue_depths(unacked: dict[str, int]) -> list[dict[str, Any]]:
    """Ready messages and consumers of each watched queue, by passive declares as the monitor
    role (no permission needed); unacked: what the live workers say they hold."""
    connection = pika.BlockingConnection(broker_parameters(BROKER_TIMEOUT))
    try:
        channel = connection.channel()
        depths = []
        for queue, kind in queues_to_watch():
            try:
                found = channel.queue_declare(queue=queue, passive=True).method
            except ChannelClosedByBroker as error:
                channel = connection.channel()  # a missing queue closes the channel
                depths.append({"queue": queue, "kind": kind, "missing": True, "error": error.reply_text})
                continue
            depths.append(
                {
                    "queue": queue,
                    "kind": kind,
                    "ready": found.message_count,
                    "unacked": unacked.get(queue, 0),
                    "consumers": found.consumer_count,
                }
            )
        return depths
    finally:
        if connection.is_open:
            connection.close()


def outbox_backlog() -> dict[str, Any]:
    unsent = OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(count=Count("id"), oldest=Min("id"))
    oldest_seconds = 0.0
    if unsent["oldest"] is not None:
        created = OutboxMessage.objects.filter(id=unsent["oldest"]).values_list("created_at", flat=True).first()
        if created is not None:
            oldest_seconds = max(0.0, (timezone.now() - created).total_seconds())
    return {"unsent": unsent["count"], "oldest_seconds": round(oldest_seconds, 3)}


def dead_letter_counts() -> dict[str, Any]:
    """Dead letters stored and not yet replayed or discarded, per queue they died in."""
    rows = (
        DeadLetter.objects.filter(state=DeadLetter.State.DEAD)
        .values("queue")
        .annotate(count=Count("id"))
        .order_by("queue")
    )
    by_queue = {row["queue"]: row["count"] for row in rows}
    return {"stored": by_queue, "total": sum(by_queue.values())}


def breaker_states() -> dict[str, str]:
    """The circuit breakers' states (passline/breakers.py), by name; none where it is absent."""
    try:
        breakers = importlib.import_module("passline.breakers")
    except ImportError:
        return {}
    return dict(breakers.breaker_states())


def _read(errors: dict[str, str], part: str, read: Any, default: Any) -> Any:
    try:
        return read()
    except Exception as error:  # noqa: BLE001 - one part away must not hide the others
        logger.warning("operations status: %s unreadable: %r", part, error)
        errors[part] = f"{type(error).__name__}: {error}"[:300]
        if isinstance(error, DatabaseError):
            from django.db import connection

            connection.close()
        return default


def snapshot(*, broker: bool = True) -> dict[str, Any]:
    """Everything the operations page shows, as JSON-ready data."""
    errors: dict[str, str] = {}
    entries: list[registry.Entry] = _read(errors, "registry", registry.entries, [])
    unacked: dict[str, int] = defaultdict(int)
    for entry in entries:
        for queue, count in entry.unacked.items():
            unacked[queue] += count
    summaries = role_summaries(entries)
    return {
        "at": time.time(),
        "workers": [entry.as_json() for entry in entries],
        "roles": [summary.as_json() for summary in summaries],
        "missing": [s.role for s in summaries if not s.alive and s.role in expected_roles()],
        "queues": _read(errors, "queues", lambda: queue_depths(unacked), []) if broker else [],
        "outbox": _read(errors, "outbox", outbox_backlog, None),
        "dead_letters": _read(errors, "dead_letters", dead_letter_counts, None),
        "breakers": _read(errors, "breakers", breaker_states, {}),
        "errors": errors,
    }
