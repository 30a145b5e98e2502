"""Billing in batches: a backlog of placed orders charged as one at a time would decide, the
balance worker's batch of commands, duplicates inside batches, settled orders skipped."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from decimal import Decimal

import pika

from billing.events import BALANCE_DEBIT, BALANCE_GET
from billing.models import LedgerEntry, Payment, Wallet
from billing.services.payments import order_charge, order_charge_many
from billing.services.wallets import wallet_credit
from bus.models import OutboxMessage, ProcessedMessage
from bus.rpc import RemoteError, RpcClient
from consumers.balance import balance_commands
from consumers.billing import billing_order_placed
from ordering.models import Order
from ordering.services import order_cancel
from tests.broker import queue_depth
from tests.factories import UserFactory
from tests.integration.test_billing import (  # noqa: F401 - shop is a fixture
    assert_ledger_consistent,
    bus_url,
    credit,
    place,
    shop,
    status,
)
from tests.support import RecordingRunner, wait_until


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
