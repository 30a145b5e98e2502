"""One order followed end to end: the request's correlation id on every log line of every
handler of every message it caused (in batches too, per message), each message naming its
cause, the socket frames carrying the id, and the admin's order page drawing the tree.

Real MariaDB, RabbitMQ and Redis; the workers run in threads of this process, so one log
handler sees every line they write."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from audit.models import AuditRecord
from billing.services.wallets import wallet_credit
from bus.models import OutboxMessage, ProcessedMessage
from consumers.analytics import analytics_events
from consumers.audit import audit_events
from consumers.bridge import bridge_notification
from consumers.notifier import notifier_email, notifier_plan, notifier_push
from live.protocol import KitchenTicket, OrderUpdate
from notifications.models import Notification
from ordering.models import Order, OrderEvent
from ordering.services import api_token_issue
from passline.logging import CorrelationIdFilter
from tests.factories import CustomerFactory, StaffMembershipFactory, UserFactory, verified
from tests.integration.sockets import ws
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "application/json"
# An id from outside is taken as it is when it looks like one (8 to 128 characters).
REQUEST = "abc-order-0001"
OTHER = "other-order-0002"
COOK = "cook-accept-0003"
# Where the handlers of an order's messages log.
HANDLER_LOGGERS = ("bus", "consumers", "ordering", "billing", "notifications", "analytics", "audit", "live")


class Captured(logging.Handler):
    """Every record, with the correlation id the project's filter stamps on it when emitted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(CorrelationIdFilter())
        self.records: list[logging.LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.records.append(record)

    def snapshot(self) -> list[logging.LogRecord]:
        with self._guard:
            return list(self.records)


@pytest.fixture
def logs() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in HANDLER_LOGGERS}
    for name in HANDLER_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="module")
def rabbit_vhost(private_broker) -> str:
    """A RabbitMQ node of this module's own: every worker of the chain runs against it."""
    return private_broker.url


def made(factory: Any, **fields: Any) -> Any:
    """A factory's object (factory_boy's classes are not typed as what they make)."""
    return factory(**fields)


def bearer(user, request_id: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {api_token_issue(user=user)}", "X-Request-ID": request_id})


def place(customer, restaurant, dish, request_id: str) -> Order:
    body = {
        "restaurant_id": restaurant.pk,
        "items": [{"menu_item_id": dish.pk, "quantity": 1}],
        "delivery_address": "12 Baker Street",
    }
    response = bearer(customer, request_id).post("/api/v1/orders", body, content_type=JSON)
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == request_id
    return Order.objects.get(pk=response.json()["id"])


def funded_customer():
    customer = verified(made(CustomerFactory))
    wallet_credit(user_id=customer.pk, amount=Decimal("50.00"), kind="top_up", key=f"t-{customer.pk}", description="")
    return customer


def all_sent() -> bool:
    return not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


def trail(request_id: str) -> dict[str, AuditRecord]:
    return {
        r.type + ":" + str(r.payload.get("status", "")): r
        for r in AuditRecord.objects.filter(correlation_id=request_id)
    }


def notified(order: Order) -> bool:
    """The order's paid email was delivered, and its command recorded by the audit trail."""
    email = Notification.objects.filter(order=order, channel="email", key__contains=":paid").first()
    return (
        email is not None
        and email.status == "sent"
        and AuditRecord.objects.filter(type="customer.notify", payload__notification_id=email.pk).exists()
    )


def run_everything(run_relay, run_consumers, payment_workers) -> None:
    """Every worker an order's messages reach, as the Procfile runs them."""
    run_consumers(audit_events, analytics_events)
    run_consumers(notifier_plan, notifier_email, notifier_push)
    run_consumers(bridge_notification)
    assert len(payment_workers) == 2


def test_every_log_line_of_every_handler_names_the_request_per_message_in_batches_too(
    logs, run_relay, run_consumers, payment_workers, restaurant, menu
):
    # Two orders of two requests, both waiting in the queues before any worker takes them: the
    # workers then take them as batches holding both requests.
    mine, theirs = funded_customer(), funded_customer()
    order = place(mine, restaurant, menu["pizza"], REQUEST)
    other = place(theirs, restaurant, menu["pasta"], OTHER)
    request_of = {order.pk: REQUEST, other.pk: OTHER}
    run_relay()
    wait_until(all_sent)
    run_everything(run_relay, run_consumers, payment_workers)
    wait_until(lambda: notified(order) and notified(other), timeout=30)
    wait_until(lambda: ProcessedMessage.objects.filter(consumer="bridge.notification").count() >= 2)
    # The audit and analytics workers linger: wait until every message reached both.
    wait_until(
        lambda: (
            AuditRecord.objects.filter(correlation_id__in=[REQUEST, OTHER], type="order.status_changed").count()
            == ProcessedMessage.objects.filter(
                consumer="analytics.events",
                message_id__in=AuditRecord.objects.filter(type="order.status_changed").values("message_id"),
            ).count()
            >= 2
        )
    )

    # What each message, order and notification belongs to, from the database's own records.
    message_request = dict(AuditRecord.objects.values_list("message_id", "correlation_id"))
    notification_request = {
        n.pk: request_of[n.order_id or 0] for n in Notification.objects.filter(order__in=[order, other])
    }
    assert set(AuditRecord.objects.filter(order_id=order.pk).values_list("correlation_id", flat=True)) == {REQUEST}
    assert set(AuditRecord.objects.filter(order_id=other.pk).values_list("correlation_id", flat=True)) == {OTHER}

    checked: dict[str, set[str]] = {REQUEST: set(), OTHER: set()}
    handled: dict[str, set[str]] = {REQUEST: set(), OTHER: set()}
    batched: dict[str, set[str]] = {REQUEST: set(), OTHER: set()}
    for record in logs.snapshot():
        fields = vars(record)
        expected = None
        if fields.get("message_id") in message_request:
            expected = message_request[fields["message_id"]]
        elif fields.get("order_id") in request_of:
            expected = request_of[fields["order_id"]]
        elif fields.get("notification_id") in notification_request:
            expected = notification_request[fields["notification_id"]]
        if expected not in checked:
            continue  # another message (the wallets' top-ups, made without a request)
        # no line of one request's message carries the other's id (or none)
        assert record.correlation_id == expected, (record.name, record.getMessage(), fields)
        checked[expected].add(record.name)
        if record.getMessage().startswith("handled "):
            handled[expected].add(fields["queue"])
            if fields["batch"] > 1:
                batched[expected].add(fields["queue"])

    for request_id in (REQUEST, OTHER):
        # every handler of every message the request caused logged under its id
        assert {
            "billing.order_placed",
            "balance.commands",
            "audit.events",
            "analytics.events",
            "notifier.plan",
            "notifier.email",
            "bridge.notification",
        } <= handled[request_id]
        assert {
            "bus.runner",
            "ordering.services.orders",
            "notifications.services",
            "consumers.analytics",
            "consumers.audit",
            "consumers.bridge",
        } <= checked[request_id], checked[request_id]
        # and the lingering workers took both requests' messages in one batch
        assert {"audit.events", "analytics.events"} <= batched[request_id]


def test_each_message_names_the_message_that_caused_it(run_relay, run_consumers, payment_workers, restaurant, menu):
    mine, theirs = funded_customer(), funded_customer()
    order = place(mine, restaurant, menu["pizza"], REQUEST)
    other = place(theirs, restaurant, menu["pasta"], OTHER)
    run_relay()
    run_everything(run_relay, run_consumers, payment_workers)
    wait_until(lambda: notified(order) and notified(other), timeout=30)

    for this, request_id in ((order, REQUEST), (other, OTHER)):
        messages = trail(request_id)
        placed = messages["order.placed:"]
        # the web request's message has no cause: it is the root, found by the request's id
        assert placed.causation_id == "" and placed.order_id == this.pk
        # order.placed → the charge's debit, payment.succeeded, the paid status, its timer
        for caused in ("balance.debit:", "payment.succeeded:", "order.status_changed:paid", "order.acceptance_timer:"):
            assert messages[caused].causation_id == placed.message_id, caused
        # order.status_changed (paid) → the notifier's delivery command
        email = Notification.objects.get(order=this, channel="email", key__contains=":paid")
        command = AuditRecord.objects.get(type="customer.notify", payload__notification_id=email.pk)
        assert command.correlation_id == request_id
        assert command.causation_id == messages["order.status_changed:paid"].message_id
        assert email.correlation_id == request_id
    # the outbox rows carry the same envelope
    paid = trail(REQUEST)["order.status_changed:paid"]
    assert (
        f'"causation_id":"{trail(REQUEST)["order.placed:"].message_id}"'
        in OutboxMessage.objects.get(message_id=paid.message_id).body
    )


def test_socket_frames_carry_the_request_that_made_the_change(
    logs, run_relay, run_consumers, payment_workers, restaurant, menu
):
    customer = funded_customer()
    cook = made(StaffMembershipFactory, restaurant=restaurant).user
    order = place(customer, restaurant, menu["pizza"], REQUEST)
    owner_token, cook_token = api_token_issue(user=customer), api_token_issue(user=cook)

    async def scenario():
        owner, kitchen = ws(f"/ws/orders/{order.pk}/", owner_token), ws(f"/ws/kitchen/{restaurant.pk}/", cook_token)
        assert (await owner.connect())[0] and (await kitchen.connect())[0]
        assert (await owner.receive_json_from(timeout=5))["type"] == "order.snapshot"
        assert (await kitchen.receive_json_from(timeout=5))["type"] == "kitchen.snapshot"

        # when the chain charges the order (billing, caused by the placing request)
        await asyncio.get_running_loop().run_in_executor(None, start_chain)
        paid = await owner.receive_json_from(timeout=15)
        assert (paid["type"], paid["status"], paid["correlation_id"]) == ("order.update", "paid", REQUEST)
        OrderUpdate.model_validate(paid)
        frames = [await kitchen.receive_json_from(timeout=10) for _ in range(2)]
        assert {(f["type"], f["correlation_id"]) for f in frames} == {
            ("order.update", REQUEST),
            ("kitchen.ticket", REQUEST),
        }
        KitchenTicket.model_validate(next(f for f in frames if f["type"] == "kitchen.ticket"))

        # and when the cook accepts it, by a request of their own
        response = await asyncio.get_running_loop().run_in_executor(None, accept)
        assert response == 200
        accepted = await owner.receive_json_from(timeout=10)
        assert (accepted["status"], accepted["correlation_id"]) == ("accepted", COOK)

        # a resume replays from the database, still naming each step's request
        again = ws(f"/ws/orders/{order.pk}/", owner_token)
        assert (await again.connect())[0]
        await again.receive_json_from(timeout=5)
        await again.send_json_to({"type": "resume", "after_version": 1})
        replayed = [await again.receive_json_from(timeout=5) for _ in range(2)]
        assert [(f["version"], f["correlation_id"]) for f in replayed] == [(2, REQUEST), (3, COOK)]
        for client in (owner, kitchen, again):
            await client.disconnect()

    def start_chain() -> None:
        run_relay()
        run_consumers(bridge_notification)
        assert payment_workers

    def accept() -> int:
        client = bearer(cook, COOK)
        return client.post(
            f"/api/v1/kitchen/orders/{order.pk}/transition", {"to": "accepted"}, content_type=JSON
        ).status_code

    async_to_sync(scenario)()
    assert OrderEvent.objects.get(order=order, version=3).correlation_id == COOK
    # each push is logged under the request that caused it
    pushes = [r for r in logs.snapshot() if r.name == "live.consumers" and "pushed to" in r.getMessage()]
    assert {(r.getMessage().split()[0], r.correlation_id) for r in pushes} >= {
        ("order.update", REQUEST),
        ("kitchen.ticket", REQUEST),
        ("order.update", COOK),
    }


class _Tree(HTMLParser):
    """The message tree's nodes as (type, the type of the node it is nested in), and each
    node's handler lines."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []  # the kinds of the <li> elements open now
        self.path: list[str] = []  # the types of the nodes open now
        self.nodes: list[tuple[str, str | None]] = []
        self.handlers: dict[str, list[str]] = {}
        self._reading: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "li":
            kind = "node" if "message-tree-node" in classes else "handler" if "message-tree-handler" in classes else ""
            self.open.append(kind)
            if kind == "handler":
                self._text: list[str] = []
        elif tag == "strong" and self.open and self.open[-1] == "node":
            self._reading = "type"

    def handle_data(self, data: str) -> None:
        if self._reading == "type":
            self.nodes.append((data.strip(), self.path[-1] if self.path else None))
            self.path.append(data.strip())
        elif self.open and self.open[-1] == "handler":
            self._text.append(data)
        self._reading = None

    def handle_endtag(self, tag: str) -> None:
        if tag != "li" or not self.open:
            return
        kind = self.open.pop()
        if kind == "node":
            self.path.pop()
        elif kind == "handler":
            self.handlers.setdefault(self.path[-1], []).append(" ".join("".join(self._text).split()))


def test_the_admin_order_page_shows_the_tree_of_its_messages(
    run_relay, run_consumers, payment_workers, restaurant, menu
):
    customer = funded_customer()
    order = place(customer, restaurant, menu["pizza"], REQUEST)
    run_relay()
    run_everything(run_relay, run_consumers, payment_workers)
    wait_until(lambda: notified(order), timeout=30)
    admin = made(UserFactory, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)

    response = client.get(f"/admin/ordering/order/{order.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    tree = _Tree()
    tree.feed(html[html.index('class="message-tree"') :])
    parents = dict(tree.nodes)
    # the request's message is a root, what it caused nested under it, and so on down
    assert parents["order.placed"] is None
    assert parents["payment.succeeded"] == "order.placed"
    assert parents["order.status_changed"] == "order.placed"
    assert parents["customer.notify"] == "order.status_changed"
    # with the consumers that handled each, and when
    assert any("billing.order_placed" in h and "ms)" in h for h in tree.handlers["order.placed"])
    assert any("notifier.email" in h for h in tree.handlers["customer.notify"])
    assert REQUEST in html
    # no inline script or style (the CSP forbids them)
    fragment = html[html.index('class="message-tree"') :]
    fragment = fragment[: fragment.index("</fieldset>")] if "</fieldset>" in fragment else fragment
    assert "<script" not in fragment and "style=" not in fragment
