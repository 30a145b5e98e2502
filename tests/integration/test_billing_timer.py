"""A backlog of acceptance time-outs (a kitchen that stopped accepting): the timers and the
refunds they cause are handled in batches, and every order is rejected and refunded once."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from billing.models import LedgerEntry, Payment, Wallet
from billing.services.payments import order_refund
from bus.models import OutboxMessage
from bus.topology import declare_topology
from consumers.balance import balance_commands
from consumers.billing import billing_acceptance_timeout, billing_order_placed, billing_refunds
from ordering.models import Order
from ordering.services import order_transition_by_staff
from tests.broker import queue_depth
from tests.factories import UserFactory
from tests.integration.test_billing import assert_ledger_consistent, credit, place, shop  # noqa: F401 - a fixture
from tests.support import RecordingRunner, wait_until

ORDERS = 60
DUPLICATED = 5


def test_a_backlog_of_acceptance_timers_is_rejected_and_refunded_in_batches_each_order_once(
    bus, run_relay, run_consumers, worker_threads, shop
):
    quick = dataclasses.replace(billing_acceptance_timeout, queue="test.acceptance_backlog", delay_seconds=1)
    declare_topology([quick])
    customers = [UserFactory() for _ in range(6)]
    for customer in customers:
        credit(customer, "500.00", f"t-{customer.pk}")
    run_relay()
    run_consumers(balance_commands)
    # given paid orders that nobody accepts but the first
    charging = run_consumers(billing_order_placed)
    orders = [place(customers[i % len(customers)], shop) for i in range(ORDERS)]
    ids = [order.pk for order in orders]
    wait_until(
        lambda: Order.objects.filter(pk__in=ids, status="paid").count() == ORDERS, timeout=90, what="every order paid"
    )
    charging.stop()
    order_transition_by_staff(order_id=ids[0], user=shop[2], to="accepted")
    # and some timers published twice (a relay that died before marking them sent)
    timers = OutboxMessage.objects.filter(type="order.acceptance_timer", aggregate__in=[f"order:{pk}" for pk in ids])
    for row in list(timers.order_by("id")[:DUPLICATED]):
        row.pk, row.sent_at = None, None
        row.save()
    # and the whole backlog waiting, the timers run out, nobody handling them yet
    wait_until(lambda: queue_depth(bus, quick.queue)[0] == ORDERS + DUPLICATED, timeout=60, what="the backlog")
    # when the timer and refund consumers start on it
    running = [run_consumers(quick, runner=RecordingRunner), run_consumers(billing_refunds, runner=RecordingRunner)]
    timer, refunds = (worker.worker for worker in running)
    wait_until(
        lambda: Payment.objects.filter(order_id__in=ids, status="refunded").count() == ORDERS - 1,
        timeout=120,
        what="every unaccepted order refunded",
    )
    wait_until(lambda: timer.handled == ORDERS + DUPLICATED, timeout=30, what="every timer settled")
    wait_until(
        lambda: queue_depth(bus, "billing.refunds")[0] == 0 and refunds.handled == ORDERS - 1,
        timeout=30,
        what="every rejection settled",
    )
    worker_threads.stop()
    # then every order but the accepted one was rejected and refunded exactly once
    statuses = dict(Order.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses.pop(ids[0]) == "accepted"
    assert set(statuses.values()) == {"rejected"}
    for order in orders[1:]:
        refunds_of_order = list(LedgerEntry.objects.filter(kind="refund", order_id=order.pk))
        assert [entry.amount for entry in refunds_of_order] == [order.total]
        assert Payment.objects.get(order=order).refund_entry_id == refunds_of_order[0].pk
        assert OutboxMessage.objects.filter(aggregate=f"order:{order.pk}", type="payment.refunded").count() == 1
    assert not LedgerEntry.objects.filter(kind="refund", order_id=ids[0]).exists()
    assert order_refund(order_id=ids[1], reason="again") is None
    spent = {customer.pk: Decimal("0.00") for customer in customers}
    spent[orders[0].customer_id] += orders[0].total
    for customer in customers:
        assert Wallet.objects.get(user=customer).balance == Decimal("500.00") - spent[customer.pk]
    assert_ledger_consistent()
    # and both were handled in batches, not one order a transaction
    assert sum(len(batch) for batch in timer.batches) == ORDERS + DUPLICATED
    assert max(len(batch) for batch in timer.batches) > 1
    assert max(len(batch) for batch in refunds.batches) > 1
