"""``kill -9`` of each worker role and of the relay while it holds work in flight: nothing is lost,
nothing is done twice.

One stack as ``make run`` starts it (scripts/supervise.py, the real Procfile), on this test run's
database, vhost and Redis prefix. Orders flow through it the whole time; each role that handles
order traffic is killed with SIGKILL in turn, at a moment it holds something (a worker: its
queues have unacked deliveries, right after a burst of orders; the relay: the outbox has unsent
rows, which it claims in an open transaction), and the supervisor starts it again. With a short
acceptance timeout every order goes the whole way: placed, charged (billing, through balance),
rejected by the timer, refunded; audited, folded into the figures, notified. At the end:

* every order placed is in its final state, charged once and refunded once (the wallet ledger),
  every wallet equal to its ledger;
* every message the outbox sent is audited once, every order's figures are whole (analytics),
  every planned notification was delivered (none pending), once per key;
* no dead letter.

Only app processes are killed here (the test's own supervisor restarts them): the machine's
shared RabbitMQ, MariaDB and Redis are never touched.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import quote, unquote, urlsplit

import pytest
from django.db.models import Count, Sum

from analytics.models import OrderFact
from audit.models import AuditRecord
from billing.models import LedgerEntry, Wallet
from bus.models import DeadLetter, OutboxMessage
from notifications.models import Notification
from ordering.models import CustomerProfile, Order
from ordering.services import api_token_issue
from tests.broker import RABBITMQCTL, ctl
from tests.e2e.conftest import e2e_env  # noqa: F401 - a fixture
from tests.e2e.test_supervision import PROCFILE, Supervised, _http, supervised_stack
from tests.factories import CustomerFactory, WalletFactory, verified
from tests.support import wait_until

pytestmark = pytest.mark.slow

# The roles that handle order traffic, in the order they are killed; each with its queues.
KILLED = ["relay", "billing", "balance", "bridge", "notifier", "notifier-email", "notifier-sms", "audit", "analytics"]
# Seconds before an unaccepted order is rejected and refunded: every order ends on its own.
ACCEPT_TIMEOUT = 4
CUSTOMERS = 4
STARTING_BALANCE = Decimal("1000.00")
BURST = 12  # orders placed at once before a kill, so the victim has work in hand


def _queues_of(role: str) -> list[str]:
    for line in PROCFILE.read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == role:
            words = command.split()
            return words[words.index("consume") + 1 :] if "consume" in words else []
    raise LookupError(role)


def _unacked(vhost: str) -> dict[str, int]:
    """Deliveries handed out and not yet acked, per queue of the vhost."""
    result = subprocess.run(
        [RABBITMQCTL, "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "messages_unacknowledged"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    counts = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit():
            counts[fields[0]] = int(fields[1])
    return counts


class Orders:
    """Places orders through the HTTP API, steadily in the background and in bursts on demand;
    every placement is retried with its idempotency key until the web answers 201."""

    def __init__(self, url: str, tokens: list[str], body: dict) -> None:
        self.url, self.tokens, self.body = url, tokens, body
        self.ids: list[int] = []
        self._lock = threading.Lock()
        self._count = 0
        self._stop = threading.Event()
        self.errors: list[str] = []

    def place(self) -> None:
        with self._lock:
            self._count += 1
            number = self._count
        token = self.tokens[number % len(self.tokens)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, answer = _http("POST", f"{self.url}/api/v1/orders", self.body, token=token, key=f"kill-{number}")
            if status == 201:
                with self._lock:
                    self.ids.append(answer["id"])
                return
            time.sleep(0.5)
        self.errors.append(f"order {number} was never taken: {status} {answer}")

    def burst(self, count: int) -> None:
        threads = [threading.Thread(target=self.place) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def steady(self, per_second: float) -> threading.Thread:
        def run() -> None:
            while not self._stop.wait(1 / per_second):
                self.place()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture
def own_vhost() -> Iterator[str]:
    """A vhost of this test's own. The acceptance timer's delay queue takes its TTL from whoever
    declares it first: declared with this test's 4 s on the session's vhost, it would reject
    the orders of every later test there four seconds after they are paid."""
    vhost = f"passline-test-{uuid.uuid4().hex[:8]}"
    ctl("add_vhost", vhost)
    ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    finally:
        ctl("delete_vhost", vhost)


@pytest.fixture
def stack(e2e_env, transactional_db, own_vhost, tmp_path) -> Iterator[tuple[Supervised, str]]:
    env = {**e2e_env, "ORDER_ACCEPT_TIMEOUT_SECONDS": str(ACCEPT_TIMEOUT)}
    with supervised_stack(env, own_vhost, tmp_path) as running:
        yield running


def _kill_while_busy(supervised: Supervised, orders: Orders, role: str, vhost: str) -> str:
    """Burst orders in, then SIGKILL ``role`` the moment it holds work; how it was caught."""
    queues = _queues_of(role)
    pid = supervised.status()[role][1]
    caught = ""
    for attempt in range(3):
        bursting = threading.Thread(target=orders.burst, args=(BURST,))
        bursting.start()
        if attempt == 2:
            # Never seen holding anything (a fast handler acks between two looks of the broker's
            # CLI): killed blind, in the middle of the burst's traffic.
            time.sleep(random.uniform(0.5, 2.0))
            caught = "mid-burst (nothing unacked seen)"
            break
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            if role == "relay":
                busy = OutboxMessage.objects.filter(sent_at__isnull=True).exists()
            else:
                unacked = _unacked(vhost)
                busy = any(unacked.get(queue, 0) > 0 for queue in queues)
            if busy:
                caught = "with unsent outbox rows" if role == "relay" else "with unacked deliveries"
                break
            time.sleep(0.05)
        if caught:
            break
        bursting.join()
    subprocess.run(["kill", "-9", str(pid)], check=True)
    bursting.join()
    try:
        wait_until(
            lambda: (lambda state: state[0] == "RUNNING" and state[1] != pid)(supervised.status()[role]),
            timeout=60,
            interval=0.5,
            what=f"{role} restarted",
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{supervised.status()}\n{supervised.output()}") from None
    return caught


def test_kill_9_of_every_role_mid_batch_loses_nothing_and_duplicates_nothing(stack, restaurant, menu) -> None:
    supervised, url = stack
    vhost = unquote(urlsplit(supervised.env["RABBITMQ_URL"]).path[1:])
    customers = [CustomerFactory.create() for _ in range(CUSTOMERS)]
    for number, customer in enumerate(customers):
        # told of every step by email and text too, so both senders have traffic (a number
        # ending in 0000 or 0001 always fails with the logging SMS provider)
        CustomerProfile.objects.filter(user=customer).update(notify_sms=True, phone=f"+49 30 5551{number + 10}")
        verified(customer, email=True, phone=True)
        WalletFactory(user=customer, balance=STARTING_BALANCE)
    pizza = menu["pizza"]
    orders = Orders(
        url,
        [api_token_issue(user=customer) for customer in customers],
        {
            "restaurant_id": restaurant.pk,
            "items": [{"menu_item_id": pizza.pk, "quantity": 1}],
            "delivery_address": "1 Test Street",
        },
    )

    # given: orders flowing through the whole stack
    flow = orders.steady(per_second=1)
    wait_until(lambda: Order.objects.filter(status="paid").exists(), timeout=60, what="the first order paid")

    # when: each role is killed in turn while it holds work, and comes back
    random.seed(20)
    caught = {role: _kill_while_busy(supervised, orders, role, vhost) for role in KILLED}
    orders.stop()
    flow.join(timeout=70)
    print(f"\nkilled: {caught}; {len(orders.ids)} orders")
    assert not orders.errors, orders.errors

    # then: every order reaches its final state: rejected by the timer, and refunded
    placed = set(orders.ids)
    assert len(placed) == len(orders.ids) > len(KILLED) * BURST

    def settled() -> bool:
        return (
            Order.objects.filter(pk__in=placed, status="rejected").count() == len(placed)
            and LedgerEntry.objects.filter(order_id__in=placed, kind="refund").count() >= len(placed)
            and not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
            and not Notification.objects.filter(order_id__in=placed, status="pending").exists()
            and OrderFact.objects.filter(order_id__in=placed, exit_status="rejected").count() == len(placed)
        )

    started = time.monotonic()
    try:
        wait_until(settled, timeout=180, interval=1, what="every order rejected, refunded, notified and counted")
    except AssertionError as error:
        statuses = Counter(Order.objects.filter(pk__in=placed).values_list("status", flat=True))
        raise AssertionError(f"{error}\n{statuses}\n{supervised.output()}") from None
    print(f"settled {time.monotonic() - started:.1f} s after the last kill")
    print(Counter(Notification.objects.filter(order_id__in=placed).values_list("channel", "status")))

    # charged once and refunded once each, every wallet equal to its ledger and whole again
    entries = Counter(LedgerEntry.objects.filter(order_id__in=placed).values_list("order_id", "kind"))
    assert entries == Counter({(order_id, kind): 1 for order_id in placed for kind in ("charge", "refund")})
    for wallet in Wallet.objects.filter(user__in=customers):
        # (a charge is a negative amount)
        assert wallet.balance == wallet.entries.aggregate(total=Sum("amount"))["total"] == STARTING_BALANCE

    # every message the outbox sent audited (once: the message id is unique there)
    wait_until(
        lambda: not OutboxMessage.objects.exclude(message_id__in=AuditRecord.objects.values("message_id")).exists(),
        timeout=60,
        what="every sent message audited",
    )
    # the figures count each order's payment and refund once
    facts = OrderFact.objects.filter(order_id__in=placed)
    assert facts.count() == len(placed)
    assert all(fact.paid_amount == fact.total == fact.refunded_amount for fact in facts)
    # every notification planned once per key and delivered (or skipped on purpose), none lost
    keys = Notification.objects.filter(order_id__in=placed).values("key").annotate(n=Count("id"))
    assert keys and all(row["n"] == 1 for row in keys)
    sent = Counter(Notification.objects.filter(order_id__in=placed, status="sent").values_list("channel", flat=True))
    assert sent["email"] > 0 and sent["sms"] > 0, sent
    assert not Notification.objects.filter(order_id__in=placed, status__in=["pending", "failed"]).exists()
    # and nothing was given up on
    assert not DeadLetter.objects.exists()
