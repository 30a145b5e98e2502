"""The payment chain on a three-node RabbitMQ cluster while nodes die, freeze or all go away.

Orders are placed at a steady rate (through the ordering service, or the API) by customers with
money in their wallets; the relay, the balance worker and billing's workers run in threads of
this process, each connected to the cluster through ``RABBITMQ_URLS``. Whatever the fault, every
order must end paid exactly once (one charge in the wallet's ledger, the wallet equal to its
ledger) without anyone stepping in. The convergence times are printed (``-s`` or ``-rA``).

The cluster is private (tests/servers/rabbit_cluster.py), shared by the tests of this module: a
test heals it before it starts (a node killed or frozen by the previous test is brought back).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from billing.models import LedgerEntry, Payment, Wallet
from billing.services.wallets import wallet_credit
from bus.models import OutboxMessage
from bus.relay import OutboxRelay
from bus.runner import WorkerRunner
from bus.topology import declare_topology
from consumers.balance import balance_commands
from consumers.billing import billing_order_placed, billing_refunds
from operations import readiness
from ordering.models import Order
from ordering.services import api_token_issue
from ordering.services.orders import OrderRequest, order_place
from ordering.status import OrderStatus
from tests.broker import purge_all, queue_depth
from tests.factories import CustomerFactory, MenuCategoryFactory, MenuItemFactory, RestaurantFactory
from tests.servers.rabbit_cluster import RabbitCluster, rabbit_cluster  # noqa: F401 - the module's cluster
from tests.support import WorkerThreads, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The brief's load: about 50 orders a second while the fault happens.
RATE = 50.0
CUSTOMERS = 20
FUNDS = Decimal("2000.00")
PRICE = Decimal("11.50")
# Far more than any convergence seen: past it, something is stuck for good.
CONVERGENCE_TIMEOUT = 180.0
BILLING_QUEUE = billing_order_placed.queue
CHAIN_QUEUES = (BILLING_QUEUE, balance_commands.queue)


# --- the cluster and the chain ---------------------------------------------------------------------


def heal(cluster: RabbitCluster) -> None:
    """Every node running, answering and in the cluster again."""
    for node in cluster.nodes:
        if node.paused:
            node.resume()
        if node.running():
            node.heal()  # a partition a failed test left
    down = [node for node in cluster.nodes if not node.running()]
    for node in down:
        node.boot()
    for node in cluster.nodes:
        node.wait()
    wait_until(cluster.formed, timeout=120, interval=0.5, what="the cluster whole again")


@pytest.fixture
def cluster(rabbit_cluster: RabbitCluster, settings: Any, transactional_db: None) -> RabbitCluster:
    """The module's cluster, whole, as the broker of every client of this process; the
    topology declared and the chain's queues empty."""
    heal(rabbit_cluster)
    settings.RABBITMQ_URLS = rabbit_cluster.urls
    settings.RABBITMQ_URL = rabbit_cluster.urls[0]
    # A frozen node's connections are given up after two missed heartbeats.
    settings.RABBITMQ_HEARTBEAT = 5
    declare_topology()
    purge_all(rabbit_cluster.urls[0])
    return rabbit_cluster


def run_chain(worker_threads: WorkerThreads) -> None:
    """The relay, the balance worker and billing's charges and refunds, as the Procfile runs
    them (each its own connection, on a node of the rotation)."""
    worker_threads.start(OutboxRelay(idle_interval=0.005, max_reconnect_delay=1.0))
    worker_threads.start(WorkerRunner([balance_commands]))
    worker_threads.start(WorkerRunner([billing_order_placed, billing_refunds]))


@pytest.fixture
def shop(transactional_db: None) -> dict[str, Any]:
    """A restaurant with one dish, and customers with money in their wallets."""
    restaurant = RestaurantFactory(name="Casa Cluster")
    category = MenuCategoryFactory(restaurant=restaurant, name="Mains", position=0)
    dish = MenuItemFactory(category=category, name="Pizza", price=PRICE)
    customers: list[Any] = [CustomerFactory() for _ in range(CUSTOMERS)]
    for customer in customers:
        wallet_credit(user_id=customer.pk, amount=FUNDS, kind="top_up", key=f"ha-{customer.pk}", description="")
    return {"restaurant": restaurant, "dish": dish, "customers": customers}


class Placer:
    """Places orders at ``rate`` a second on a thread of its own until stopped: through the
    ordering service, or (``api``) as the customers' HTTP requests."""

    def __init__(self, shop: dict[str, Any], *, rate: float = RATE, api: bool = False, tag: str = "o") -> None:
        self.shop = shop
        self.rate = rate
        self.tag = tag
        self.placed: list[int] = []
        self.refused: list[str] = []
        self.started = self.ended = 0.0
        self._stop = threading.Event()
        self._clients = (
            [
                Client(headers={"Authorization": f"Bearer {api_token_issue(user=customer)}"})
                for customer in shop["customers"]
            ]
            if api
            else None
        )
        self._thread = threading.Thread(target=self._run, name=f"placer-{tag}", daemon=True)

    def start(self) -> Placer:
        self._thread.start()
        return self

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the placer did not stop"
        return list(self.placed)

    def achieved(self) -> float:
        """Orders per second actually placed."""
        return len(self.placed) / max(self.ended - self.started, 1e-9)

    def _place(self, index: int) -> int:
        customers = self.shop["customers"]
        key = f"{self.tag}-{index}"
        if self._clients is None:
            request = OrderRequest(
                restaurant_id=self.shop["restaurant"].pk,
                items=[(self.shop["dish"].pk, 1)],
                delivery_address="12 Baker Street",
            )
            order, _ = order_place(customer=customers[index % len(customers)], request=request, idempotency_key=key)
            return order.pk
        body = {
            "restaurant_id": self.shop["restaurant"].pk,
            "items": [{"menu_item_id": self.shop["dish"].pk, "quantity": 1}],
            "delivery_address": "12 Baker Street",
        }
        response = self._clients[index % len(customers)].post(
            "/api/v1/orders", body, content_type="application/json", headers={"Idempotency-Key": key}
        )
        if response.status_code != 201:
            raise AssertionError(f"order {key} refused: {response.status_code} {response.content[:300]!r}")
        return int(response.json()["id"])

    def _run(self) -> None:
        self.started = due = time.monotonic()
        index = 0
        try:
            while not self._stop.is_set():
                try:
                    self.placed.append(self._place(index))
                except Exception as error:  # noqa: BLE001 - reported by the test
                    self.refused.append(repr(error))
                index += 1
                due += 1 / self.rate
                self._stop.wait(max(0.0, due - time.monotonic()))
        finally:
            self.ended = time.monotonic()
            connection.close()


@pytest.fixture
def placers() -> Iterator[list[Placer]]:
    """Placers a test starts; stopped at teardown whatever happened."""
    started: list[Placer] = []
    yield started
    for placer in started:
        placer.stop()


def place(placers: list[Placer], shop: dict[str, Any], **options: Any) -> Placer:
    placer = Placer(shop, **options).start()
    placers.append(placer)
    return placer


# --- what must hold after every fault ----------------------------------------------------------------


def paid(orders: list[int]) -> bool:
    return Order.objects.filter(pk__in=orders, status=OrderStatus.PAID).count() == len(orders)


def wait_paid(orders: list[int], what: str) -> float:
    """Wait until every order is paid; the seconds it took."""
    started = time.monotonic()
    try:
        wait_until(lambda: paid(orders), timeout=CONVERGENCE_TIMEOUT, interval=0.1, what=what)
    except AssertionError:
        statuses = Counter(Order.objects.filter(pk__in=orders).values_list("status", flat=True))
        raise AssertionError(f"{what}: {dict(statuses)} of {len(orders)}; {unsent_summary()}") from None
    return time.monotonic() - started


def assert_paid_exactly_once(cluster: RabbitCluster, orders: list[int]) -> None:
    """Every order paid, with one charge of its total in its customer's ledger; every wallet
    equal to its ledger; nothing dead-lettered; the outbox empty."""
    assert len(set(orders)) == len(orders), "an order id placed twice"
    assert not Order.objects.filter(pk__in=orders).exclude(status=OrderStatus.PAID).exists()
    charges = Counter(
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, order_id__in=orders).values_list("order_id", flat=True)
    )
    twice = {order: count for order, count in charges.items() if count != 1}
    assert not twice, f"orders charged more than once: {twice}"
    assert set(charges) == set(orders), f"{len(set(orders) - set(charges))} orders never charged"
    assert not LedgerEntry.objects.filter(order_id__in=orders).exclude(kind=LedgerEntry.Kind.CHARGE).exists()
    assert Payment.objects.filter(order_id__in=orders, status=Payment.Status.CHARGED).count() == len(orders)
    for wallet in Wallet.objects.filter(entries__order_id__in=orders).distinct():
        ledger = wallet.entries.aggregate(total=Sum("amount"))["total"]
        assert wallet.balance == ledger, f"wallet {wallet.pk}: balance {wallet.balance}, ledger {ledger}"
    charged = LedgerEntry.objects.filter(order_id__in=orders).aggregate(total=Sum("amount"))["total"]
    assert charged == -PRICE * len(orders)
    # the last orders' own messages (paid, their timers) may still be on their way to the broker
    started = time.monotonic()
    try:
        wait_until(
            lambda: not OutboxMessage.objects.filter(sent_at__isnull=True).exists(),
            timeout=CONVERGENCE_TIMEOUT,
            interval=0.2,
            what="the outbox sent in full",
        )
    except AssertionError:
        raise AssertionError(f"the outbox not sent in full: {unsent_summary()}") from None
    report("outbox sent in full", after_all_paid_s=time.monotonic() - started)
    url = cluster.answering()[0].url
    for queue in CHAIN_QUEUES:
        assert queue_depth(url, f"{queue}.dead")[0] == 0, f"dead letters in {queue}.dead"


def unsent_summary() -> str:
    """What is left in the outbox: rows by type, the most tries, the last errors, how long the
    latest one still waits."""
    rows = OutboxMessage.objects.filter(sent_at__isnull=True)
    types = Counter(rows.values_list("type", flat=True))
    errors = Counter(rows.exclude(last_error="").values_list("last_error", flat=True))
    latest = rows.order_by("-available_at").values_list("available_at", "attempts").first()
    most = max(rows.values_list("attempts", flat=True), default=0)
    waits = f", the latest due in {(latest[0] - timezone.now()).total_seconds():.1f} s" if latest else ""
    return f"{sum(types.values())} unsent {dict(types)}, up to {most} tries, errors {dict(errors)}{waits}"


def report(title: str, **numbers: Any) -> None:
    shown = ", ".join(
        f"{name}={value:.1f}" if isinstance(value, float) else f"{name}={value}" for name, value in numbers.items()
    )
    print(f"\n[rabbitmq cluster] {title}: {shown}")


# --- the faults ----------------------------------------------------------------------------------


def test_the_billing_queues_replicas_are_on_all_three_nodes(cluster: RabbitCluster) -> None:
    # The topology's quorum queues get RabbitMQ's default initial group size: three replicas.
    for queue in CHAIN_QUEUES:
        assert sorted(cluster.members_of(queue)) == [0, 1, 2], queue


def test_killing_the_billing_queues_leader_node_under_load_loses_and_doubles_no_payment(
    cluster: RabbitCluster, worker_threads: WorkerThreads, shop: dict[str, Any], placers: list[Placer]
) -> None:
    # given: orders flowing through the whole payment chain, and being paid
    run_chain(worker_threads)
    placer = place(placers, shop, tag="kill")
    wait_until(lambda: len(placer.placed) >= RATE * 5, timeout=120, what="five seconds of orders")
    wait_until(lambda: Order.objects.filter(status=OrderStatus.PAID).count() >= RATE * 2, timeout=120, what="payments")
    leader = cluster.leader_of(BILLING_QUEUE)

    # when: the node holding the billing queue's leader dies, orders still coming
    killed_at = time.monotonic()
    cluster.nodes[leader].kill()
    before_kill = list(placer.placed)

    # then: the orders in flight at the kill get paid while new ones keep coming, the queue
    # has a new leader on a surviving node, and every order ends paid once
    wait_paid(before_kill, "the orders placed before the kill paid")
    in_flight = time.monotonic() - killed_at
    wait_until(lambda: time.monotonic() - killed_at >= 10, timeout=20, what="ten seconds of orders after the kill")
    orders = placer.stop()
    wait_paid(orders, "every order paid")
    converged = time.monotonic() - killed_at
    assert cluster.leader_of(BILLING_QUEUE) != leader
    # and /readyz is ready (two nodes answer), naming the dead one
    readiness.forget()
    answer = readiness.check_all()
    assert answer.ready, answer.as_json()
    assert answer.checks["rabbitmq"].detail["failing_nodes"] == [f"127.0.0.1:{cluster.nodes[leader].port}"]
    report(
        "leader node killed",
        rate=placer.achieved(),
        orders=len(orders),
        before_kill_paid_s=in_flight,
        all_paid_s=converged,
        placing_after_kill_s=10.0,
    )
    assert not placer.refused, placer.refused[:3]
    assert_paid_exactly_once(cluster, orders)


def test_a_partitioned_minority_node_stops_nothing_and_after_the_heal_nothing_is_lost_or_doubled(
    cluster: RabbitCluster, worker_threads: WorkerThreads, shop: dict[str, Any], placers: list[Placer]
) -> None:
    # given: orders flowing and being paid
    run_chain(worker_threads)
    placer = place(placers, shop, tag="partition")
    wait_until(lambda: Order.objects.filter(status=OrderStatus.PAID).count() >= RATE * 2, timeout=120, what="payments")

    # when: the node holding the billing queue's leader is cut off from the two others (its
    # clients can still reach it): pause_minority makes it stop serving them
    cut = cluster.leader_of(BILLING_QUEUE)
    cut_at = time.monotonic()
    cluster.nodes[cut].partition()
    try:
        during = len(placer.placed)
        wait_until(
            lambda: len(placer.placed) >= during + RATE * 5, timeout=120, what="orders placed during the partition"
        )
        # then: ordering goes on through the majority, the partition still there
        wait_paid(placer.placed[during:], "the orders placed during the partition paid by the majority")
        through_majority = time.monotonic() - cut_at
        assert not cluster.nodes[cut].answers(), "the minority node paused itself"
    finally:
        cluster.nodes[cut].heal()
    healed_at = time.monotonic()
    orders = placer.stop()
    try:
        wait_until(cluster.formed, timeout=120, interval=0.5, what="the cut-off node back in the cluster")
        cluster.nodes[cut].wait()
    except AssertionError as error:
        raise AssertionError(f"{error}; node {cut} was cut off\n{cluster.describe()}") from None
    rejoined = time.monotonic() - healed_at

    # and after the heal nothing is lost or duplicated
    wait_paid(orders, "every order paid after the heal")
    report(
        "minority node partitioned",
        rate=placer.achieved(),
        orders=len(orders),
        paid_through_majority_s=through_majority,
        rejoined_after_heal_s=rejoined,
    )
    assert not placer.refused, placer.refused[:3]
    assert_paid_exactly_once(cluster, orders)


def test_with_every_node_down_for_20_s_orders_are_still_accepted_and_all_paid_after(
    cluster: RabbitCluster, worker_threads: WorkerThreads, shop: dict[str, Any], placers: list[Placer]
) -> None:
    # given: orders being paid
    run_chain(worker_threads)
    before = place(placers, shop, tag="before")
    wait_until(lambda: Order.objects.filter(status=OrderStatus.PAID).count() >= RATE, timeout=120, what="payments")
    orders = before.stop()

    # when: the whole cluster dies for 20 s, customers ordering through the API meanwhile
    for node in cluster.nodes:
        node.kill()
    down_at = time.monotonic()
    during = place(placers, shop, api=True, rate=10, tag="down")
    readiness.forget()
    answer = readiness.check_all()
    assert answer.failing == ["rabbitmq"], answer.as_json()
    assert all(f":{node.port}" in answer.checks["rabbitmq"].error for node in cluster.nodes)
    wait_until(lambda: time.monotonic() - down_at >= 20, timeout=30, interval=0.2, what="20 s of outage")
    cluster.start_all()
    back_at = time.monotonic()
    accepted = during.stop()

    # then: every order was accepted (the outbox held the events) and all are paid after
    assert not during.refused, during.refused[:3]
    assert len(accepted) >= 100
    orders += accepted
    converged = wait_paid(orders, "every order paid after the cluster came back")
    report(
        "all nodes down 20 s",
        orders_during_outage=len(accepted),
        cluster_boot_s=back_at - down_at - 20,
        all_paid_after_back_s=converged,
    )
    assert_paid_exactly_once(cluster, orders)
