"""Reads of the audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet

from audit.models import AuditRecord
from bus.handlers import registered
from bus.models import ProcessedMessage


def order_history(*, order_id: int) -> QuerySet[AuditRecord]:
    """Everything every service said about one order, in time order."""
    return AuditRecord.objects.filter(order_id=order_id).order_by("occurred_at", "id")


@dataclass
class HandledBy:
    """A consumer that handled a message, and how long after the message was written it did."""

    queue: str
    at: datetime
    after_ms: int


@dataclass
class MessageNode:
    """One message of an order's tree: its record, who handled it, and what it caused."""

    record: AuditRecord
    handled_by: list[HandledBy] = field(default_factory=list)
    caused: list[MessageNode] = field(default_factory=list)


# How far down causation is followed from the order's own messages (a notification command is
# two steps below the status change that caused it), and how many messages a tree shows at most.
TREE_DEPTH = 6
TREE_LIMIT = 500


def order_message_tree(*, order_id: int) -> list[MessageNode]:
    """The messages of one order nested by causation, roots first (the web request's, which
    have no cause), each with the consumers that handled it.

    The order's own messages (those whose payload names it) and, followed by ``causation_id``,
    every message they caused that does not name it (a notification's delivery command). The
    handlers come from the processed-message records (recorded when a consumer takes the
    message, in its transaction); RPC commands have none there (their servers deduplicate by
    key), nor have messages whose records were pruned.
    """
    records = {r.message_id: r for r in order_history(order_id=order_id)[:TREE_LIMIT]}
    frontier = set(records)
    for _ in range(TREE_DEPTH):
        if not frontier or len(records) >= TREE_LIMIT:
            break
        found = AuditRecord.objects.filter(causation_id__in=frontier).exclude(message_id__in=records)
        frontier = set()
        for record in found[: TREE_LIMIT - len(records)]:
            records[record.message_id] = record
            frontier.add(record.message_id)
    nodes = {message_id: MessageNode(record) for message_id, record in records.items()}
    # By (consumer, message_id), the unique key's own order: point reads, no scan of the table.
    handled = ProcessedMessage.objects.filter(consumer__in=sorted(registered()), message_id__in=list(nodes)).order_by(
        "processed_at", "consumer"
    )
    for row in handled:
        node = nodes[row.message_id]
        after = (row.processed_at - node.record.occurred_at).total_seconds() * 1000
        node.handled_by.append(HandledBy(queue=row.consumer, at=row.processed_at, after_ms=max(0, round(after))))
    roots: list[MessageNode] = []
    for node in sorted(nodes.values(), key=lambda n: (n.record.occurred_at, n.record.pk)):
        parent = nodes.get(node.record.causation_id)
        (parent.caused if parent is not None and parent is not node else roots).append(node)
    return roots
