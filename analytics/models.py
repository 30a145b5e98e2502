"""The analytics consumer's own tables: what the events said about each order, and its dishes.

Written only from events (``analytics.services.facts_record``), never from the ordering
tables, so the dashboard costs the ordering database nothing and could live on another one.
Every column is set so that applying an event twice, or events of one order in any order,
gives the same row (see ``analytics.facts.apply``). Order and restaurant ids are plain
numbers, not foreign keys: an event may arrive before anything else is known about its order,
and these tables belong to another process than the orders do.
"""

from __future__ import annotations

from typing import TypedDict

from django.db import models


class MoneyField(TypedDict):
    """The arguments of every DecimalField that holds money."""

    max_digits: int
    decimal_places: int


MONEY: MoneyField = {"max_digits": 10, "decimal_places": 2}


class OrderFact(models.Model):
    """One order as the events described it; a column stays empty until its event arrives."""

    order_id = models.BigIntegerField(primary_key=True)
    restaurant_id = models.BigIntegerField(null=True)
    # order.placed: when (its ``placed_at``, else the envelope's occurred_at) and for how much.
    placed_at = models.DateTimeField(null=True)
    total = models.DecimalField(**MONEY, null=True)
    # The step to paid (order.status_changed), and the amount charged (payment.succeeded).
    paid_at = models.DateTimeField(null=True)
    paid_amount = models.DecimalField(**MONEY, null=True)
    # The latest step preparing → ready, and the latest recall ready → preparing (by version):
    # the order counts as ready while ready_version > unready_version.
    ready_at = models.DateTimeField(null=True)
    ready_version = models.PositiveIntegerField(default=0)
    unready_version = models.PositiveIntegerField(default=0)
    # How the order ended if it ended early: payment_failed, rejected or cancelled, and when.
    exit_status = models.CharField(max_length=20, blank=True)
    exit_at = models.DateTimeField(null=True)
    # payment.refunded / payment.failed: the amounts.
    refunded_amount = models.DecimalField(**MONEY, null=True)
    failed_amount = models.DecimalField(**MONEY, null=True)
    # The newest status seen, by version (for operators reading the table; no figure uses it).
    status = models.CharField(max_length=20, blank=True)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Every figure reads one day (or hour) of one of these times, for one restaurant or all.
        indexes = [
            *(
                models.Index(fields=["restaurant_id", column], name=f"fact_restaurant_{column}")
                for column in ("placed_at", "paid_at", "ready_at", "exit_at")
            ),
            *(
                models.Index(fields=[column], name=f"fact_{column}")
                for column in ("placed_at", "paid_at", "ready_at", "exit_at")
            ),
        ]
        permissions = [("view_all_restaurants", "Can see every restaurant's dashboard")]

    def __str__(self) -> str:
        return f"Order #{self.order_id} (analytics)"


class DishLine(models.Model):
    """One dish of an order, as order.placed listed it (name and price at order time)."""

    order = models.ForeignKey(OrderFact, on_delete=models.CASCADE, related_name="dishes")
    menu_item_id = models.BigIntegerField()
    name = models.CharField(max_length=120)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**MONEY)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "menu_item_id"], name="uniq_dish_line")]

    def __str__(self) -> str:
        return f"{self.quantity}× {self.name}"
