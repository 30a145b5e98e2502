"""Property: whatever the sequence of top-ups, orders, duplicate deliveries (alone or in
batches), cancels and rejections, money is neither lost, created nor charged twice.

Runs the real services with the real balance worker answering over RabbitMQ; each step is
what a consumer's handler would do, including handling the same message twice.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.exceptions import CardDeclined
from billing.models import LedgerEntry, Payment, Wallet
from billing.services.payments import REFUND_REASONS, order_charge, order_charge_many, order_refund
from billing.services.topups import wallet_top_up
from consumers.balance import balance_commands
from ordering.exceptions import InvalidTransition
from ordering.models import Order
from ordering.services import order_cancel, order_transition_by_staff
from tests.broker import queue_depth
from tests.factories import MenuItemFactory, OrderFactory, RestaurantFactory, StaffMembershipFactory, UserFactory
from tests.support import wait_until

amounts = st.sampled_from(["5.00", "12.50", "20.00", "0.01", "99.99"])
steps = st.lists(
    st.one_of(
        st.tuples(st.just("top_up"), amounts, st.sampled_from(["4242424242424242", "4000000000000002"])),
        st.tuples(st.just("order"), st.integers(1, 3)),
        st.tuples(st.just("charge"), st.integers(0, 5)),  # deliver order.placed (again)
        st.tuples(st.just("charge_batch"), st.lists(st.integers(0, 5), min_size=1, max_size=4)),  # a batch of them
        st.tuples(st.just("cancel"), st.integers(0, 5)),
        st.tuples(st.just("reject"), st.integers(0, 5)),
        st.tuples(st.just("refund"), st.integers(0, 5)),  # deliver the compensation (again)
    ),
    min_size=1,
    max_size=14,
)


@pytest.fixture
def balance_worker(bus, run_consumers):
    run_consumers(balance_commands)
    wait_until(lambda: queue_depth(bus, "balance.commands")[1] == 1)


def check_invariants(customer, orders) -> None:
    wallet = Wallet.objects.filter(user=customer).first()
    entries = list(LedgerEntry.objects.filter(wallet__user=customer).order_by("id"))
    running = Decimal("0.00")
    for entry in entries:
        running += entry.amount
        assert entry.balance_after == running >= 0
    assert (wallet.balance if wallet else Decimal("0.00")) == running
    for order in Order.objects.filter(pk__in=[o.pk for o in orders]):
        charges = [e.amount for e in entries if e.order_id == order.pk and e.kind == "charge"]
        refunds = [e.amount for e in entries if e.order_id == order.pk and e.kind == "refund"]
        payment = Payment.objects.filter(order=order).first()
        assert len(charges) <= 1 and len(refunds) <= 1, "charged or refunded twice"
        if payment is None or payment.status == "failed":
            assert not charges and not refunds
        elif payment.status == "charged":
            assert charges == [-order.total] and not refunds
            assert order.status != "pending_payment"
        else:  # refunded
            assert charges == [-order.total] and refunds == [order.total]
            assert order.status in {"rejected", "cancelled"}
        if order.status == "paid":
            assert payment is not None and payment.status == "charged"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_money_is_never_lost_created_or_charged_twice(balance_worker, steps):
    restaurant = RestaurantFactory()
    dish = MenuItemFactory(category__restaurant=restaurant, price=Decimal("6.25"))
    cook = StaffMembershipFactory(restaurant=restaurant).user
    customer = UserFactory()
    orders: list[Order] = []

    def pick(index: int) -> Order | None:
        return orders[index % len(orders)] if orders else None

    for step in steps:
        kind = step[0]
        if kind == "top_up":
            try:
                wallet_top_up(user=customer, amount=step[1], card_number=step[2])
            except CardDeclined:
                pass
        elif kind == "order":
            orders.append(OrderFactory(customer=customer, dish=dish, quantity=step[1]))
        elif kind == "charge_batch":
            if orders:
                order_charge_many(order_ids=[pick(index).pk for index in step[1]])
        elif (order := pick(step[1])) is not None:
            try:
                if kind == "charge":
                    order_charge(order_id=order.pk)
                elif kind == "cancel":
                    order_cancel(order_id=order.pk, customer=customer)
                elif kind == "reject":
                    order_transition_by_staff(order_id=order.pk, user=cook, to="rejected")
                elif kind == "refund":
                    current = Order.objects.get(pk=order.pk).status
                    if current in REFUND_REASONS:
                        order_refund(order_id=order.pk, reason=REFUND_REASONS[current])
            except InvalidTransition:
                pass
        check_invariants(customer, orders)

    # every compensation delivered: nothing rejected or cancelled keeps the customer's money
    for order in Order.objects.filter(pk__in=[o.pk for o in orders], status__in=list(REFUND_REASONS)):
        order_refund(order_id=order.pk, reason=REFUND_REASONS[order.status])
    check_invariants(customer, orders)
    assert not Payment.objects.filter(
        order__in=orders, order__status__in=list(REFUND_REASONS), status="charged"
    ).exists()
