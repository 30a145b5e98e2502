"""The audit trail on the real broker and database: every message of an order's saga, across
services, stored once with its envelope, in time order and under one correlation id; the
admin finds it by order, customer and correlation id."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from audit.models import AuditRecord
from audit.selectors import order_history
from audit.services import subjects
from bus.correlation import correlation_context
from consumers.audit import audit_events
from ordering.models import Order
from ordering.services import order_transition_by_staff
from tests.factories import MenuItemFactory, OrderFactory, StaffMembershipFactory, UserFactory, WalletFactory
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
SAGA = "saga-correlation-0001"


def test_a_batch_stores_each_message_once_even_when_it_repeats_or_was_stored_before(db):
    from audit.services import audit_records
    from bus.envelope import Envelope

    def envelope(order_id: int) -> Envelope:
        return Envelope(
            type="order.placed",
            version=1,
            payload={"order_id": order_id, "customer_id": 3},
            correlation_id="batch-test",
        )

    first, second = envelope(1), envelope(2)
    audit_records(messages=[(first, "billing", "order.placed")])
    # when the same message comes again, once more inside a batch, next to a new one
    audit_records(
        messages=[
            (first, "billing", "order.placed"),
            (second, "billing", "order.placed"),
            (second, "billing", "order.placed"),
        ]
    )
    # then each is stored once, with what it names
    assert sorted(AuditRecord.objects.values_list("message_id", "order_id", "customer_id")) == sorted(
        [(first.message_id, 1, 3), (second.message_id, 2, 3)]
    )


def test_subjects_come_from_the_payload():
    assert subjects({"order_id": 7, "customer_id": 3}) == (7, 3)
    assert subjects({"user_id": 3, "amount": "1.00"}) == (None, 3)
    assert subjects({"order_id": True, "customer_id": "3"}) == (None, None)
    assert subjects(["not", "a", "dict"]) == (None, None)


def test_an_orders_whole_saga_is_audited_in_order_under_one_correlation_id(
    relay, payment_workers, run_consumers, worker_threads, customer, restaurant
):
    dish = MenuItemFactory(category__restaurant=restaurant, price=Decimal("12.50"))
    cook = StaffMembershipFactory(restaurant=restaurant).user
    WalletFactory(user=customer, balance="30.00")
    run_consumers(audit_events)
    # when an order is placed and paid, then rejected by the kitchen and refunded, all
    # under one correlation id (as one operator's trace would follow it)
    with correlation_context(SAGA):
        order = OrderFactory(customer=customer, dish=dish)
        wait_until(lambda: Order.objects.get(pk=order.pk).status == "paid", what="the order to be paid")
        order_transition_by_staff(order_id=order.pk, user=cook, to="rejected", reason="Out of dough")
    wait_until(
        lambda: order_history(order_id=order.pk).filter(type="payment.refunded").exists(),
        what="the refund to be audited",
    )
    worker_threads.stop()

    # then the order's history holds every step of every service, oldest first
    history = list(order_history(order_id=order.pk))
    steps = [(r.type, r.payload.get("status") or r.payload.get("kind", "")) for r in history]
    expected = [
        ("order.placed", ""),
        ("balance.debit", "charge"),
        ("balance.changed", "charge"),
        ("order.status_changed", "paid"),
        ("payment.succeeded", ""),
        ("order.status_changed", "rejected"),
        ("balance.credit", "refund"),
        ("balance.changed", "refund"),
        ("payment.refunded", ""),
    ]
    for step in expected:
        assert step in steps, (step, steps)
    # placed before paid before rejected before refunded
    position = {step: steps.index(step) for step in expected}
    assert (
        position[("order.placed", "")]
        < position[("order.status_changed", "paid")]
        < position[("order.status_changed", "rejected")]
        < position[("payment.refunded", "")]
    )
    assert [r.occurred_at for r in history] == sorted(r.occurred_at for r in history)
    assert {r.correlation_id for r in history} == {SAGA}
    # each message once, with its whole envelope
    assert len({r.message_id for r in history}) == len(history)
    # every record that names a customer names this one (the acceptance timer names none)
    assert {r.customer_id for r in history} - {None} == {customer.pk}
    # and the order's admin page links to this trail
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/ordering/order/{order.pk}/change/").content.decode()
    assert f"/admin/audit/auditrecord/?q=order%3A{order.pk}" in page


def test_the_admin_finds_the_trail_by_order_customer_and_correlation_id(db, customer):
    other = UserFactory()
    for index, (order_id, user, correlation) in enumerate(
        [(11, customer, "corr-a"), (11, customer, "corr-a"), (12, other, "corr-b")]
    ):
        AuditRecord.objects.create(
            message_id=f"m{index}",
            type="order.status_changed",
            version=1,
            exchange="notification",
            routing_key="order.status.paid",
            correlation_id=correlation,
            occurred_at=f"2026-01-0{index + 1}T10:00Z",
            payload={"order_id": order_id, "customer_id": user.pk},
            order_id=order_id,
            customer_id=user.pk,
        )
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)

    def found(query: str) -> list[str]:
        page = client.get("/admin/audit/auditrecord/", {"q": query})
        assert page.status_code == 200
        return [r.message_id for r in page.context["cl"].result_list]

    assert found("order:11") == ["m0", "m1"]  # oldest first
    assert found(f"customer:{other.pk}") == ["m2"]
    assert found("corr-b") == ["m2"]
    assert sorted(found("order.status_changed")) == ["m0", "m1", "m2"]
    # a record shows its envelope
    detail = client.get(f"/admin/audit/auditrecord/{AuditRecord.objects.get(message_id='m2').pk}/change/")
    assert detail.status_code == 200 and "corr-b" in detail.content.decode()
