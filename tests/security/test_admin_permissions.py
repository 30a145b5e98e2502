"""Admin actions that act (resend a notification, replay or discard a dead letter) need the
change permission: staff who may only look cannot act."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from notifications.models import Notification
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _staff(*codenames: str):
    user = UserFactory.create(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sent_email() -> Notification:
    return Notification.objects.create(
        key=uuid.uuid4().hex,
        customer=UserFactory.create(),
        message="welcome",
        channel=Notification.Channel.EMAIL,
        recipient="someone@example.com",
        body="Hello",
        status=Notification.Status.SENT,
    )


def _resend(client: Client, notification: Notification):
    return client.post(
        "/admin/notifications/notification/",
        {"action": "resend", "_selected_action": [notification.pk]},
    )


def test_staff_who_may_only_view_notifications_cannot_resend_them(sent_email) -> None:
    viewer = _staff("view_notification")
    assert viewer.get("/admin/notifications/notification/").status_code == 200

    _resend(viewer, sent_email)

    assert not Notification.objects.filter(resend_of=sent_email).exists()


def test_staff_who_may_change_notifications_resend_them(sent_email) -> None:
    operator = _staff("view_notification", "change_notification")

    _resend(operator, sent_email)

    assert Notification.objects.filter(resend_of=sent_email).count() == 1
