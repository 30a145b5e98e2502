"""Wallets and payments on the real MariaDB and RabbitMQ: the balance worker's RPC, the
billing worker, refunds and the acceptance time-out."""

from __future__ import annotations

import dataclasses
import threading
from decimal import Decimal

import pika
import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from billing.exceptions import InsufficientFunds, InvalidAmount, KeyReused
from billing.models import LedgerEntry, Payment, Wallet
from billing.services.payments import order_charge, order_refund
from billing.services.wallets import wallet_credit, wallet_debit
from bus.models import OutboxMessage
from bus.topology import declare_topology
from consumers.balance import balance_commands
from consumers.billing import billing_acceptance_timeout, billing_order_placed, billing_refunds
from ordering.models import MenuItem, Order
from ordering.services import order_cancel, order_transition_by_staff
from tests.factories import MenuItemFactory, OrderFactory, RestaurantFactory, StaffMembershipFactory, UserFactory
from tests.support import ManagedProcess, wait_until


def credit(user, amount, key):
    return wallet_credit(user_id=user.pk, amount=amount, kind="top_up", key=key, description="test top-up")


def debit(user, amount, key):
    return wallet_debit(user_id=user.pk, amount=amount, kind="charge", key=key, description="test charge")


def assert_ledger_consistent():
    """Every wallet's balance is the sum of its entries, never negative, each entry's
    balance_after the running sum."""
    for wallet in Wallet.objects.all():
        entries = list(LedgerEntry.objects.filter(wallet=wallet).order_by("id"))
        running = Decimal("0.00")
        for entry in entries:
            running += entry.amount
            assert entry.balance_after == running >= 0, entry
        assert wallet.balance == running, wallet


# --- the balance service ------------------------------------------------------------------------


def test_credit_and_debit_move_money_through_the_ledger(customer):
    credit(customer, "20.00", "t-1")
    entry = debit(customer, "7.50", "c-1")
    assert (entry.amount, entry.balance_after) == (Decimal("-7.50"), Decimal("12.50"))
    assert Wallet.objects.get(user=customer).balance == Decimal("12.50")
    assert_ledger_consistent()


def test_the_same_key_never_moves_money_twice_and_another_amount_under_it_is_refused(customer):
    credit(customer, "20.00", "t-1")
    first = debit(customer, "5.00", "c-1")
    again = debit(customer, "5.00", "c-1")
    assert again.pk == first.pk
    with pytest.raises(KeyReused):
        debit(customer, "6.00", "c-1")
    assert Wallet.objects.get(user=customer).balance == Decimal("15.00")
    assert LedgerEntry.objects.count() == 2


def test_a_wallet_never_goes_negative(customer):
    credit(customer, "10.00", "t-1")
    with pytest.raises(InsufficientFunds):
        debit(customer, "10.01", "c-1")
    assert LedgerEntry.objects.count() == 1
    assert Wallet.objects.get(user=customer).balance == Decimal("10.00")


@pytest.mark.parametrize("amount", ["0", "-1.00", "1.005", "abc", "NaN", "Infinity", "10000.01", 1.5, True])
def test_bad_amounts_are_refused(customer, amount):
    with pytest.raises(InvalidAmount):
        credit(customer, amount, "t-bad")
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_never_overdraw_and_the_ledger_sums_to_the_balance():
    customer = UserFactory()
    credit(customer, "50.00", "t-1")
    barrier = threading.Barrier(10)
    outcomes: list[object] = []

    def spend(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(debit(customer, "7.00", f"c-{i}"))
        except InsufficientFunds as error:
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(isinstance(o, LedgerEntry) for o in outcomes) == 7  # 7 × 7.00 fit in 50.00
    assert Wallet.objects.get(user=customer).balance == Decimal("1.00")
    assert_ledger_consistent()


# --- through the workers -----------------------------------------------------------------------


@pytest.fixture
def shop(db):
    restaurant = RestaurantFactory()
    dish = MenuItemFactory(category__restaurant=restaurant, price=Decimal("12.50"), daily_stock=100)
    cook = StaffMembershipFactory(restaurant=restaurant).user
    return restaurant, dish, cook


def place(customer, shop, quantity=1):
    return OrderFactory(customer=customer, dish=shop[1], quantity=quantity)


def status(order):
    return Order.objects.get(pk=order.pk).status


def test_a_placed_order_is_charged_and_paid(relay, payment_workers, customer, shop):
    credit(customer, "30.00", "t-1")
    order = place(customer, shop, quantity=2)
    wait_until(lambda: status(order) == "paid")
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.amount) == ("charged", Decimal("25.00"))
    assert Wallet.objects.get(user=customer).balance == Decimal("5.00")
    assert payment.charge_entry.description.startswith(f"Order #{order.pk}")
    assert_ledger_consistent()


def test_a_short_wallet_fails_the_payment_and_releases_the_stock(relay, payment_workers, customer, shop):
    credit(customer, "10.00", "t-1")
    order = place(customer, shop, quantity=3)
    assert MenuItem.objects.get(pk=shop[1].pk).remaining_today == 97
    wait_until(lambda: status(order) == "payment_failed")
    assert Payment.objects.get(order=order).failure_reason == "Not enough money in the wallet"
    assert MenuItem.objects.get(pk=shop[1].pk).remaining_today == 100
    assert Wallet.objects.get(user=customer).balance == Decimal("10.00")
    assert LedgerEntry.objects.filter(kind="charge").count() == 0


def test_a_redelivered_order_placed_never_charges_twice(relay, payment_workers, customer, shop):
    credit(customer, "30.00", "t-1")
    order = place(customer, shop)
    wait_until(lambda: status(order) == "paid")
    # the same message again (a redelivery), and the service called again directly
    assert order_charge(order_id=order.pk) is None
    row = OutboxMessage.objects.get(type="order.placed", aggregate=f"order:{order.pk}")
    channel_connection = pika.BlockingConnection(pika.URLParameters(bus_url()))
    channel_connection.channel().basic_publish(
        "billing", "order.placed", row.body.encode(), pika.BasicProperties(message_id=row.message_id, delivery_mode=2)
    )
    channel_connection.close()
    wait_until(lambda: queue_is_idle("billing.order_placed"))
    assert LedgerEntry.objects.filter(kind="charge").count() == 1
    assert Wallet.objects.get(user=customer).balance == Decimal("17.50")


def bus_url():
    from django.conf import settings

    return settings.RABBITMQ_URL


def queue_is_idle(queue):
    from tests.broker import queue_depth

    return queue_depth(bus_url(), queue)[0] == 0


def test_rejection_and_cancellation_each_refund_exactly_once(relay, payment_workers, customer, shop):
    credit(customer, "50.00", "t-1")
    rejected, cancelled = place(customer, shop), place(customer, shop)
    wait_until(lambda: status(rejected) == "paid" and status(cancelled) == "paid")
    order_transition_by_staff(order_id=rejected.pk, user=shop[2], to="rejected", reason="Out of dough")
    order_cancel(order_id=cancelled.pk, customer=customer)
    wait_until(lambda: Payment.objects.filter(status="refunded").count() == 2)
    # a duplicate compensation does nothing
    assert order_refund(order_id=rejected.pk, reason="again") is None
    refunds = LedgerEntry.objects.filter(kind="refund").order_by("order_id")
    assert [(e.order_id, e.amount) for e in refunds] == [
        (rejected.pk, Decimal("12.50")),
        (cancelled.pk, Decimal("12.50")),
    ]
    assert "rejected by the kitchen" in refunds[0].description or "Out of dough" in refunds[0].description
    assert Wallet.objects.get(user=customer).balance == Decimal("50.00")
    assert MenuItem.objects.get(pk=shop[1].pk).remaining_today == 100
    assert_ledger_consistent()


def test_an_order_nobody_accepts_in_time_is_rejected_and_refunded_once(
    relay, run_consumers, worker_threads, customer, shop
):
    quick = dataclasses.replace(billing_acceptance_timeout, queue="test.acceptance_timeout", delay_seconds=2)
    declare_topology([quick])
    run_consumers(balance_commands)
    run_consumers(billing_order_placed, billing_refunds, quick)
    credit(customer, "30.00", "t-1")
    accepted = place(customer, shop)
    wait_until(lambda: status(accepted) == "paid")
    order_transition_by_staff(order_id=accepted.pk, user=shop[2], to="accepted")
    forgotten = place(customer, shop)
    wait_until(lambda: status(forgotten) == "rejected", timeout=20)
    wait_until(lambda: Payment.objects.filter(order=forgotten, status="refunded").exists())
    worker_threads.stop()
    order = Order.objects.get(pk=forgotten.pk)
    assert "Not accepted by the kitchen" in order.events.get(status="rejected").reason
    assert status(accepted) == "accepted"  # the kitchen's acceptance stopped its timer
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    assert Wallet.objects.get(user=customer).balance == Decimal("17.50")


def test_concurrent_orders_from_several_billing_processes_never_overdraw(bus, run_relay, customer, shop, tmp_path):
    # given 100.00 and 12 orders of 12.50 (150.00) handled by two billing processes at once
    credit(customer, "100.00", "t-1")
    processes = [ManagedProcess("consume", "balance.commands", log_dir=tmp_path, RABBITMQ_URL=bus)] + [
        ManagedProcess("consume", "billing.order_placed", log_dir=tmp_path, RABBITMQ_URL=bus) for _ in range(2)
    ]
    relay = run_relay()
    try:
        orders = [place(UserFactory(), shop) for _ in range(0)] + [place(customer, shop) for _ in range(12)]
        wait_until(
            lambda: not Order.objects.filter(pk__in=[o.pk for o in orders], status="pending_payment").exists(),
            timeout=60,
        )
    finally:
        relay.stop()
        for process in processes:
            process.terminate()
    paid = Order.objects.filter(pk__in=[o.pk for o in orders], status="paid").count()
    assert paid == 8  # 8 × 12.50 = 100.00
    assert Wallet.objects.get(user=customer).balance == Decimal("0.00")
    assert LedgerEntry.objects.filter(kind="charge").aggregate(s=Sum("amount"))["s"] == Decimal("-100.00")
    assert_ledger_consistent()


def test_a_billing_worker_killed_mid_charge_leaves_every_order_consistent(bus, run_relay, shop, tmp_path):
    customers = [UserFactory() for _ in range(20)]
    for i, customer in enumerate(customers):
        credit(customer, "12.50" if i % 2 else "5.00", f"t-{i}")  # half can pay
    balance = ManagedProcess("consume", "balance.commands", log_dir=tmp_path, RABBITMQ_URL=bus)
    billing = ManagedProcess("consume", "billing.order_placed", log_dir=tmp_path, RABBITMQ_URL=bus)
    relay = run_relay()
    try:
        orders = [place(customer, shop) for customer in customers]
        # kill the billing worker as soon as it has settled some orders, mid-stream
        wait_until(lambda: Order.objects.exclude(status="pending_payment").count() >= 3, timeout=30)
        billing.kill()
        restarted = ManagedProcess("consume", "billing.order_placed", log_dir=tmp_path, RABBITMQ_URL=bus)
        try:
            wait_until(lambda: not Order.objects.filter(status="pending_payment").exists(), timeout=60)
        finally:
            restarted.terminate()
    finally:
        relay.stop()
        balance.terminate()
    for order in Order.objects.filter(pk__in=[o.pk for o in orders]):
        charges = LedgerEntry.objects.filter(kind="charge", order_id=order.pk).count()
        assert (order.status, charges) in {("paid", 1), ("payment_failed", 0)}, (order.pk, order.status, charges)
    assert Order.objects.filter(status="paid").count() == 10
    assert_ledger_consistent()


# --- batches: pipelined debits, batched wallet commands -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_charge_in_the_workers_transaction_takes_no_savepoint(run_consumers, shop):
    customer = UserFactory()
    credit(customer, "30.00", "t-1")
    order = place(customer, shop)
    run_consumers(balance_commands)
    # when: the billing worker's handling charges it, in the runner's transaction
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        payment = order_charge(order_id=order.pk)
    # then: paid, without a savepoint (two statements) of the service's own
    assert payment is not None and payment.status == "charged"
    assert status(order) == "paid"
    assert not [q["sql"] for q in queries.captured_queries if "SAVEPOINT" in q["sql"]]


def test_a_movement_not_isolated_takes_no_savepoint_and_a_refusal_undoes_the_enclosing_block(customer):
    credit(customer, "10.00", "t-1")
    with transaction.atomic():  # the balance worker's transaction
        with CaptureQueriesContext(connection) as queries:
            wallet_debit(user_id=customer.pk, amount="4.00", kind="charge", key="c-1", description="x", isolated=False)
        # a command refused in a batch: the runner's savepoint for it undoes it alone
        with pytest.raises(InsufficientFunds), transaction.atomic():
            wallet_debit(user_id=customer.pk, amount="7.00", kind="charge", key="c-2", description="x", isolated=False)
        assert Wallet.objects.get(user=customer).balance == Decimal("6.00")
    assert not [q["sql"] for q in queries.captured_queries if "SAVEPOINT" in q["sql"]]
    assert LedgerEntry.objects.filter(idempotency_key="c-2").count() == 0
