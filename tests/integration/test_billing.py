"""Wallets and payments on the real MariaDB and RabbitMQ: the balance worker's RPC, the
billing worker, refunds and the acceptance time-out."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import uuid
from decimal import Decimal

import pika
import pytest
from django.db import connection
from django.db.models import Sum

from billing.events import BALANCE_DEBIT, BALANCE_GET
from billing.exceptions import InsufficientFunds, InvalidAmount, KeyReused
from billing.models import LedgerEntry, Payment, Wallet
from billing.services.payments import order_charge, order_charge_many, order_refund
from billing.services.wallets import wallet_credit, wallet_debit
from bus.models import OutboxMessage, ProcessedMessage
from bus.rpc import RemoteError, RpcClient
from bus.topology import declare_topology
from consumers.balance import balance_commands
from consumers.billing import billing_acceptance_timeout, billing_order_placed, billing_refunds
from ordering.models import MenuItem, Order
from ordering.services import order_cancel, order_transition_by_staff
from tests.broker import queue_depth
from tests.factories import MenuItemFactory, OrderFactory, RestaurantFactory, StaffMembershipFactory, UserFactory
from tests.support import ManagedProcess, RecordingRunner, wait_until


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


def consuming(queue, consumers=1):
    return lambda: queue_depth(bus_url(), queue)[1] == consumers


def in_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def fallbacks(caplog, queue):
    """How many batches of ``queue`` failed and went again one message at a time."""
    return sum(
        1
        for record in caplog.records
        if "one message at a time" in record.getMessage() and getattr(record, "queue", "") == queue
    )


def one_at_a_time(orders, wallets):
    """What charging the orders one after the other, in this order, decides for each."""
    left = dict(wallets)
    decided = {}
    for order in orders:
        if left[order.customer_id] >= order.total:
            left[order.customer_id] -= order.total
            decided[order.pk] = "paid"
        else:
            decided[order.pk] = "payment_failed"
    return decided


def test_a_backlog_of_placed_orders_is_charged_in_batches_as_one_at_a_time_would_decide(
    bus, run_relay, run_consumers, worker_threads, shop, caplog
):
    caplog.set_level(logging.INFO, logger="bus.runner")
    # given rich customers, short ones (5.00 < 12.50) and one whose orders add up to more
    # than the wallet holds: 25.00 paid, 25.00 refused, then 12.50 paid again, 12.50 refused
    rich, short, greedy = [UserFactory() for _ in range(4)], [UserFactory() for _ in range(3)], UserFactory()
    wallets = {
        **{c.pk: Decimal("200.00") for c in rich},
        **{c.pk: Decimal("5.00") for c in short},
        greedy.pk: Decimal("40.00"),
    }
    for user_id, amount in wallets.items():
        wallet_credit(user_id=user_id, amount=amount, kind="top_up", key=f"t-{user_id}", description="top-up")
    greedy_quantities = [2, 2, 1, 1, 3, 1]
    plan = []
    for i in range(12):
        plan += [(rich[i % 4], 1 + i % 3), (short[i % 3], 1)] + ([(greedy, greedy_quantities[i])] if i < 6 else [])
    # and a backlog of their 30 order.placed messages waiting, nobody charging yet
    run_relay()
    orders = [place(customer, shop, quantity) for customer, quantity in plan]
    wait_until(lambda: queue_depth(bus, "billing.order_placed")[0] == len(orders), what="the backlog")
    expected = one_at_a_time(orders, wallets)
    # when one balance worker and one billing worker work through it
    running = [
        run_consumers(balance_commands, runner=RecordingRunner),
        run_consumers(billing_order_placed, runner=RecordingRunner),
    ]
    balance, billing = (worker.worker for worker in running)
    ids = [order.pk for order in orders]
    wait_until(
        lambda: not Order.objects.filter(pk__in=ids, status="pending_payment").exists(),
        timeout=60,
        what="every order settled",
    )
    worker_threads.stop()
    # then each order ended as charging them one at a time would have decided
    assert dict(Order.objects.filter(pk__in=ids).values_list("pk", "status")) == expected
    assert list(expected.values()).count("payment_failed") == 12 + 4  # every short order, four of the six
    for order in orders:
        charges = list(LedgerEntry.objects.filter(kind="charge", order_id=order.pk))
        payment = Payment.objects.get(order=order)
        events = list(
            OutboxMessage.objects.filter(aggregate=f"order:{order.pk}").order_by("id").values_list("type", flat=True)
        )
        if expected[order.pk] == "paid":
            assert [entry.amount for entry in charges] == [-order.total]
            assert (payment.status, payment.charge_entry_id) == ("charged", charges[0].pk)
            assert events == ["order.placed", "order.status_changed", "payment.succeeded", "order.acceptance_timer"]
        else:
            assert charges == []
            assert (payment.status, payment.failure_reason) == ("failed", "Not enough money in the wallet")
            assert events == ["order.placed", "order.status_changed", "payment.failed"]
    assert_ledger_consistent()
    # and both workers did take batches of more than one message, each in one transaction
    assert sum(len(batch) for batch in billing.batches) == len(orders)
    assert max(len(batch) for batch in billing.batches) > 1
    assert max(len(batch) for batch in balance.batches) > 1
    assert fallbacks(caplog, "billing.order_placed") == fallbacks(caplog, "balance.commands") == 0


def test_a_batch_of_wallet_commands_answers_each_and_a_refusal_in_the_middle_undoes_nothing_else(run_consumers, caplog):
    caplog.set_level(logging.INFO, logger="bus.runner")
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    credit(a, "20.00", "t-a"), credit(b, "5.00", "t-b"), credit(c, "20.00", "t-c")

    def move(user, amount, key):
        return {"user_id": user.pk, "amount": amount, "key": key, "kind": "charge", "description": "test charge"}

    answers = {}

    def call_many(name, command, payloads):
        client = RpcClient()
        try:
            answers[name] = client.call_many(command, payloads, timeout=30)
        finally:
            client.close()

    # given a balance worker holding its first batch (one command) while five more come in
    running = run_consumers(balance_commands, runner=RecordingRunner, hold=True)
    balance = running.worker
    try:
        wait_until(consuming("balance.commands"))
        first = in_thread(call_many, "first", BALANCE_GET, [{"user_id": a.pk}])
        wait_until(lambda: len(balance.batches) == 1, what="the first command in hand")
        batch = in_thread(
            call_many,
            "batch",
            BALANCE_DEBIT,
            [
                move(a, "7.50", "a-1"),
                move(b, "12.50", "b-1"),
                move(c, "7.50", "c-1"),
                move(a, "7.50", "a-1"),
                move(b, "5.00", "b-2"),
            ],
        )
        wait_until(lambda: balance.waiting() == 5, what="five commands waiting")
        # when it handles them
        balance.release(2)
        first.join(timeout=30)
        batch.join(timeout=30)
    finally:
        balance.release(10)
        running.stop()
    # then they were one batch in one transaction, and each command got its own answer
    assert [len(taken) for taken in balance.batches] == [1, 5]
    assert fallbacks(caplog, "balance.commands") == 0
    assert answers["first"] == [{"user_id": a.pk, "balance": "20.00"}]
    debited_a, refused_b, debited_c, again_a, debited_b = answers["batch"]
    assert (debited_a["amount"], debited_a["balance"]) == ("-7.50", "12.50")
    assert isinstance(refused_b, RemoteError) and refused_b.code == "insufficient_funds"
    assert (debited_c["amount"], debited_c["balance"]) == ("-7.50", "12.50")
    assert again_a == debited_a  # the same key: the first entry, not a second movement
    assert (debited_b["amount"], debited_b["balance"]) == ("-5.00", "0.00")
    # and the refusal in the middle took nothing else with it
    balances = dict(Wallet.objects.values_list("user_id", "balance"))
    assert (balances[a.pk], balances[b.pk], balances[c.pk]) == (Decimal("12.50"), Decimal("0.00"), Decimal("12.50"))
    assert LedgerEntry.objects.filter(kind="charge").count() == 3
    assert OutboxMessage.objects.filter(type="balance.changed").count() == 3 + 3  # the top-ups, the debits
    assert_ledger_consistent()


def test_duplicate_order_placed_messages_inside_batches_charge_nothing_more(bus, run_consumers, shop, customer, caplog):
    caplog.set_level(logging.INFO, logger="bus.runner")
    credit(customer, "100.00", "t-1")
    a, b, c, d = orders = [place(customer, shop) for _ in range(4)]  # no relay: the test delivers them
    placed = {o.pk: OutboxMessage.objects.get(type="order.placed", aggregate=f"order:{o.pk}") for o in orders}

    def deliver(order, *, new_message_id=False):
        """order.placed of ``order`` again: a redelivery (the same message id), or another message."""
        row = placed[order.pk]
        body = json.loads(row.body)
        if new_message_id:
            body["message_id"] = uuid.uuid4().hex
        connection_ = pika.BlockingConnection(pika.URLParameters(bus))
        try:
            channel = connection_.channel()
            channel.confirm_delivery()
            channel.basic_publish(
                "billing",
                "order.placed",
                json.dumps(body).encode(),
                pika.BasicProperties(message_id=body["message_id"], type="order.placed", delivery_mode=2),
            )
        finally:
            connection_.close()

    running = [run_consumers(balance_commands), run_consumers(billing_order_placed, runner=RecordingRunner, hold=True)]
    billing = running[1].worker
    try:
        wait_until(consuming("balance.commands"))
        wait_until(consuming("billing.order_placed"))
        # given A's message in hand, while B, C, B again and A again come in behind it
        deliver(a)
        wait_until(lambda: len(billing.batches) == 1, what="A's message in hand")
        for order in (b, c, b, a):
            deliver(order)
        wait_until(lambda: billing.waiting() == 4, what="four messages waiting")
        billing.release()
        # and, while that batch is held, D twice and C once more under new message ids
        wait_until(lambda: len(billing.batches) == 2, what="the second batch in hand")
        for order in (d, d, c):
            deliver(order, new_message_id=True)
        wait_until(lambda: billing.waiting() == 3, what="three messages waiting")
        # when all of it is handled
        billing.release(2)
        wait_until(lambda: billing.handled == 8, what="every delivery handled")
    finally:
        billing.release(10)
        for worker in running:
            worker.stop()
    # then the batches were the ones given, and each order was charged exactly once
    assert [[p["order_id"] for p in batch] for batch in billing.payloads()] == [
        [a.pk],
        [b.pk, c.pk, b.pk, a.pk],
        [d.pk, d.pk, c.pk],
    ]
    # (the runner sorts out the second one by one, for its repeated message ids; the third,
    # new ids only, is charged as one batch, by the service)
    assert fallbacks(caplog, "billing.order_placed") == 1
    for order in orders:
        assert status(order) == "paid"
        assert LedgerEntry.objects.filter(kind="charge", order_id=order.pk).count() == 1
        assert Order.objects.get(pk=order.pk).events.filter(status="paid").count() == 1
    assert Payment.objects.filter(order__in=orders).count() == 4
    assert Wallet.objects.get(user=customer).balance == Decimal("50.00")
    assert ProcessedMessage.objects.filter(consumer="billing.order_placed").count() == 6  # distinct message ids
    assert_ledger_consistent()


def test_charging_a_batch_skips_settled_orders_and_charges_an_order_named_twice_once(
    run_consumers, shop, customer, other_customer
):
    credit(customer, "30.00", "t-1")
    credit(other_customer, "5.00", "t-2")
    running = run_consumers(balance_commands)  # no billing worker, no relay: the test charges
    wait_until(consuming("balance.commands"))
    first, second, short = place(customer, shop), place(customer, shop), place(other_customer, shop)
    cancelled = place(customer, shop)
    order_cancel(order_id=cancelled.pk, customer=customer)
    assert order_charge(order_id=first.pk).status == "charged"
    # when a batch names a paid order, an order twice, a short one and a cancelled one
    payments = order_charge_many(order_ids=[first.pk, second.pk, short.pk, second.pk, cancelled.pk])
    # and the same batch comes again
    again = order_charge_many(order_ids=[first.pk, second.pk, short.pk, cancelled.pk])
    running.stop()
    # then only the orders still waiting were settled, each once
    assert {pk: payment.status for pk, payment in payments.items()} == {second.pk: "charged", short.pk: "failed"}
    assert again == {}
    assert [status(o) for o in (first, second, short, cancelled)] == ["paid", "paid", "payment_failed", "cancelled"]
    assert sorted(LedgerEntry.objects.filter(kind="charge").values_list("order_id", flat=True)) == [first.pk, second.pk]
    assert Wallet.objects.get(user=customer).balance == Decimal("5.00")
    assert_ledger_consistent()
