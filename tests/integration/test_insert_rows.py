"""passline.db.insert_rows: the hot paths' inserts, written out instead of compiled by the ORM."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction

from notifications.models import Notification
from ordering.models import Order, OrderEvent
from passline.db import insert_rows
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_rows_are_written_as_save_would_write_them_and_get_their_keys_in_order():
    order = Order.objects.get(pk=OrderFactory().pk)
    events = [OrderEvent(order=order, version=v, status="paid", actor_kind="system") for v in (2, 3)]

    written = insert_rows(events)

    assert [row[0] for row in written] == [event.pk for event in events]
    stored = {e.pk: e for e in OrderEvent.objects.filter(pk__in=[event.pk for event in events])}
    assert [stored[e.pk].version for e in events] == [2, 3]
    assert all(stored[e.pk].at is not None for e in events)  # the field's default, as save() sets it
    assert not events[0]._state.adding


def test_a_duplicate_key_is_an_integrity_error_without_ignore_and_left_out_with_it():
    user = User.objects.get(pk=UserFactory().pk)
    first = Notification(key="k-1", customer=user, message="welcome", channel="email")
    insert_rows([first])
    again = [
        Notification(key="k-1", customer=user, message="welcome", channel="email"),
        Notification(key="k-2", customer=user, message="welcome", channel="email"),
    ]

    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(again)
    written = insert_rows(again, returning=["key"], ignore=True)

    assert [key for _, key in written] == ["k-2"]
    assert connection.connection.warning_count() == 1
    assert Notification.objects.filter(key__in=["k-1", "k-2"]).count() == 2
