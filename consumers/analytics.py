"""The analytics worker: folds order and payment events into the analytics tables, and pushes
fresh figures to the staff dashboards that are open.

Bound to ``order.placed`` and ``payment.*`` (billing exchange) and every
``order.status.<status>`` (notification exchange), one queue, a batch at a time. Events of one
order come by two exchanges and may arrive in any order; the fold does not mind (see
``analytics.facts``).

Pushing: after a batch commits, the restaurants it changed (and the all-restaurants
dashboard) are marked dirty; one pusher thread per process recomputes a dirty dashboard's
figures and sends them to its group — at once if it has not sent to that group in the last
``ANALYTICS_PUSH_INTERVAL`` seconds, else as soon as that interval is over. So a burst costs
each group at most one recompute per interval, and the last change always goes out (a
trailing send), even when no further message comes to wake the handler. Groups nobody
watches are skipped before anything is computed.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connection, transaction

from analytics.facts import (
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
    PAYMENT_SUCCEEDED,
    PLACED,
    STATUS,
    Dish,
    Observation,
    dishes_by_item,
)
from analytics.selectors import dashboard_figures
from analytics.services import facts_record
from billing import events as billing_events
from bus.correlation import Trace, correlation_context, traced
from bus.handlers import EventHandler, Message, register
from live.groups import dashboard_group
from live.layer import GroupSender
from ordering import events as ordering_events

logger = logging.getLogger(__name__)

# At most one recompute and send per dashboard group per this many seconds, per process.
DEFAULT_PUSH_INTERVAL = 0.5
# After a failed push (Redis away), the groups are tried again this much later.
RETRY_AFTER_SECONDS = 5.0

_PAYMENTS = {
    billing_events.PAYMENT_SUCCEEDED.name: PAYMENT_SUCCEEDED,
    billing_events.PAYMENT_FAILED.name: PAYMENT_FAILED,
    billing_events.PAYMENT_REFUNDED.name: PAYMENT_REFUNDED,
}


class DashboardPusher:
    """Sends each changed dashboard its figures, throttled per group, the last change always.

    ``changed()`` is called after commit by the handler's thread; a daemon thread does the
    work with its own database connection, which it closes whenever it runs out of work.
    """

    def __init__(self, sender: GroupSender) -> None:
        self.sender = sender
        self._cond = threading.Condition()
        # Restaurant id (None: all restaurants) -> correlation id of its latest change.
        self._dirty: dict[int | None, str] = {}
        # Monotonic time before which a scope is not sent again.
        self._not_before: dict[int | None, float] = {}
        self._busy = False
        self._thread: threading.Thread | None = None
        self.recomputes = 0  # figures computed so far (tests and logs read it)

    @property
    def interval(self) -> float:
        return float(getattr(settings, "ANALYTICS_PUSH_INTERVAL", DEFAULT_PUSH_INTERVAL))

    def changed(self, restaurant_ids: Iterable[int], correlation_id: str) -> None:
        restaurant_ids = list(restaurant_ids)
        if not restaurant_ids:
            return
        with self._cond:
            for scope in (*restaurant_ids, None):
                self._dirty[scope] = correlation_id
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="dashboard-pusher", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every change has been pushed (or skipped); False on time-out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._dirty or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _take_due(self) -> dict[int | None, str]:
        """Block until some scope is dirty and out of its interval; take those."""
        while True:
            now = time.monotonic()
            due = {scope: cid for scope, cid in self._dirty.items() if self._not_before.get(scope, 0.0) <= now}
            if due:
                for scope in due:
                    del self._dirty[scope]
                    self._not_before[scope] = now + self.interval
                return due
            waits = [self._not_before[scope] - now for scope in self._dirty]
            self._cond.wait(min(waits) if waits else None)

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._take_due()
                self._busy = True
            try:
                self._push(due)
            except Exception:
                logger.warning(
                    "dashboard push failed; trying again in %.0f s",
                    RETRY_AFTER_SECONDS,
                    exc_info=True,
                    extra={"scopes": [str(scope) for scope in due]},
                )
                with self._cond:
                    for scope, cid in due.items():
                        self._dirty.setdefault(scope, cid)
                        self._not_before[scope] = time.monotonic() + RETRY_AFTER_SECONDS
            finally:
                with self._cond:
                    self._busy = False
                    idle = not self._dirty
                    self._cond.notify_all()
                if idle:
                    connection.close()  # nothing to do for now: give the connection back

    def _push(self, due: dict[int | None, str]) -> None:
        started = time.monotonic()
        groups = {dashboard_group(scope): scope for scope in due}
        members = self.sender.members(groups)
        watched = set(members)
        if not watched:
            return
        close_old_connections()
        sends: list[tuple[str, dict[str, Any]]] = []
        for group in sorted(watched):
            scope = groups[group]
            correlation_id = due[scope]
            with correlation_context(correlation_id):
                figures = dashboard_figures(restaurant_id=scope).as_json()
            self.recomputes += 1
            sends.append(
                (
                    group,
                    {
                        "type": "dashboard.figures",
                        "as_of_us": figures["as_of_us"],
                        "figures_json": json.dumps(figures, cls=DjangoJSONEncoder),
                        "correlation_id": correlation_id,
                    },
                )
            )
        # To the members read before the figures were (a dashboard opened meanwhile reads its
        # own figures as it opens).
        self.sender.send(sends, members=members)
        for group, message in sends:
            with correlation_context(message["correlation_id"]):
                logger.info(
                    "dashboard figures pushed to %s",
                    group,
                    extra={
                        "group": group,
                        "ms": round((time.monotonic() - started) * 1000, 1),
                        "skipped": len(groups) - len(watched),
                    },
                )


pusher = DashboardPusher(GroupSender())


def _placed_at(message: Message) -> datetime.datetime:
    """When the order was placed: the payload's ``placed_at`` if the publisher sends one, else
    the moment its event was written (the envelope's occurred_at, in the same transaction)."""
    value = getattr(message.payload, "placed_at", None)
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value if isinstance(value, datetime.datetime) else message.envelope.occurred_at


def observation(message: Message) -> Observation:
    """What analytics keeps of one event."""
    p = message.payload
    if message.event is ordering_events.ORDER_PLACED:
        return Observation(
            kind=PLACED,
            order_id=p.order_id,
            restaurant_id=p.restaurant_id,
            at=_placed_at(message),
            version=p.version,
            amount=p.total,
            dishes=dishes_by_item(
                Dish(menu_item_id=line.menu_item_id, name=line.name, quantity=line.quantity, unit_price=line.unit_price)
                for line in p.lines
            ),
        )
    if message.event is ordering_events.ORDER_STATUS_CHANGED:
        return Observation(
            kind=STATUS,
            order_id=p.order_id,
            restaurant_id=p.restaurant_id,
            at=p.at,
            status=p.status,
            from_status=p.from_status,
            version=p.version,
        )
    return Observation(
        kind=_PAYMENTS[message.event.name], order_id=p.order_id, restaurant_id=p.restaurant_id, amount=p.amount
    )


def record_batch(messages: list[Message]) -> list[None]:
    """Fold the batch into the analytics tables; once committed, mark its dashboards dirty.

    One fold serves the batch, so each message is logged on its own, under its own trace; a
    dashboard's push names the request of the batch's last change of that restaurant."""
    observations = []
    for message in messages:
        with traced(Trace.of(message.envelope)):
            observations.append(observation(message))
            logger.debug(
                "analytics folds %s",
                message.envelope.type,
                extra={"message_id": message.message_id, "order_id": observations[-1].order_id},
            )
    changed = facts_record(observations=observations)
    latest = {o.restaurant_id: m.envelope.correlation_id for m, o in zip(messages, observations)}
    by_request: dict[str, list[int]] = {}
    for restaurant_id in changed:
        by_request.setdefault(latest.get(restaurant_id, messages[-1].envelope.correlation_id), []).append(restaurant_id)

    def mark() -> None:
        for correlation_id, restaurant_ids in by_request.items():
            pusher.changed(restaurant_ids, correlation_id)

    transaction.on_commit(mark)
    return [None] * len(messages)


def record(message: Message) -> None:
    """One message on its own (a single delivery, or a failed batch's retry)."""
    record_batch([message])


analytics_events = register(
    EventHandler(
        queue="analytics.events",
        events=[
            ordering_events.ORDER_PLACED,
            ordering_events.ORDER_STATUS_CHANGED,
            billing_events.PAYMENT_SUCCEEDED,
            billing_events.PAYMENT_FAILED,
            billing_events.PAYMENT_REFUNDED,
        ],
        handler=record,
        batch_handler=record_batch,
        # A fold is a few queries for a whole batch: take plenty, so a burst is a few transactions.
        prefetch=1000,
        max_batch=500,
        # Dashboards are pushed at most twice a second anyway (ANALYTICS_PUSH_INTERVAL): gathering
        # for a quarter of a second makes a steady flow a few folds a second, not one per event.
        linger=0.25,
        quick=True,
    )
)
