"""Writes of analytics: folding events into the fact tables."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from analytics.facts import Observation, apply
from analytics.models import DishLine, OrderFact

logger = logging.getLogger(__name__)

# What apply() may change; compared before and after so that only changed rows are written.
FACT_FIELDS = [
    "restaurant_id",
    "placed_at",
    "total",
    "paid_at",
    "paid_amount",
    "ready_at",
    "ready_version",
    "unready_version",
    "exit_status",
    "exit_at",
    "refunded_amount",
    "failed_amount",
    "status",
    "version",
]


def _state(fact: OrderFact) -> tuple[object, ...]:
    return tuple(getattr(fact, name) for name in FACT_FIELDS)


def _concrete(name: str) -> Field[Any, Any]:
    field = OrderFact._meta.get_field(name)
    assert isinstance(field, Field)
    return field


def _write(facts: list[OrderFact], now: datetime) -> None:
    """Every changed row in one statement, whatever the batch's size: an upsert of the rows
    locked above (so always an update). ``bulk_update`` builds a CASE per column and row,
    whose compilation cost more CPU than the fold itself for a batch of hundreds."""
    fields = [_concrete(name) for name in [*FACT_FIELDS, "updated_at"]]
    quoted = [connection.ops.quote_name(cast(str, field.column)) for field in fields]
    columns = ", ".join(quoted)
    updates = ", ".join(f"{column} = VALUES({column})" for column in quoted)
    row = "(%s, " + ", ".join(["%s"] * len(fields)) + ")"
    params: list[Any] = []
    for fact in facts:
        fact.updated_at = now
        params.append(fact.order_id)
        params += [field.get_db_prep_value(getattr(fact, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(OrderFact._meta.db_table)} (order_id, {columns}) VALUES "
            + ", ".join([row] * len(facts))
            + f" ON DUPLICATE KEY UPDATE {updates}",
            params,
        )


# No savepoint: a worker calls it inside the transaction that records the message, and
# any failure rolls that whole transaction back.
@transaction.atomic(savepoint=False)
def facts_record(*, observations: Sequence[Observation]) -> set[int]:
    """Fold what events said about orders into their fact rows and dish lines, in one
    transaction; returns the restaurants whose figures changed (none for a duplicate).

    Each order's row is locked for the fold: two consumer copies holding events of one order
    apply them one after the other, each on the other's result. One INSERT … ON DUPLICATE KEY
    UPDATE creates the missing rows and locks the existing ones, in order id order, so two
    copies lock the same orders in the same order and never deadlock (an INSERT IGNORE would
    take shared locks that both would then try to upgrade).
    """
    if not observations:
        return set()
    order_ids = sorted({o.order_id for o in observations})
    now = timezone.now()
    OrderFact.objects.bulk_create(
        [OrderFact(order_id=order_id, updated_at=now) for order_id in order_ids],
        update_conflicts=True,
        update_fields=["updated_at"],
    )
    facts = {fact.order_id: fact for fact in OrderFact.objects.select_for_update().filter(order_id__in=order_ids)}
    before = {order_id: _state(fact) for order_id, fact in facts.items()}
    dishes: list[DishLine] = []
    for observation in observations:
        apply(facts[observation.order_id], observation)
        dishes += [
            DishLine(
                order_id=observation.order_id,
                menu_item_id=d.menu_item_id,
                name=d.name[:120],
                quantity=d.quantity,
                unit_price=d.unit_price,
            )
            for d in observation.dishes
        ]
    changed = [fact for order_id, fact in facts.items() if _state(fact) != before[order_id]]
    if changed:
        _write(changed, now)
    if dishes:
        # Lines never change: the first copy of an order.placed wins, a redelivery adds nothing.
        DishLine.objects.bulk_create(dishes, ignore_conflicts=True)
    logger.debug("analytics facts recorded", extra={"orders": len(order_ids), "changed": len(changed)})
    return {fact.restaurant_id for fact in changed if fact.restaurant_id is not None}
