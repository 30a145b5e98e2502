"""Toasts sent by the planner itself (notifications/toasts.py), on the real database, broker
and Redis: straight to the customer's open page once the plan commits, with no delivery
command; recorded as not sent when the page closed in between; handed to the push worker's
road when Redis cannot take them."""

from __future__ import annotations

import copy

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import channel_layers
from django.db import transaction

from bus.models import OutboxMessage
from consumers.notifier import LIVE_TOASTS, LiveToasts
from live.groups import customer_group
from live.layer import GroupSender
from notifications.events import CUSTOMER_NOTIFY
from notifications.models import Notification
from notifications.services import STEP_MESSAGES, Step, notifications_plan_order_steps
from ordering.models import CustomerProfile
from ordering.services import api_token_issue
from tests.factories import OrderFactory, UserFactory
from tests.integration.sockets import ws
from tests.support import free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def browser_customer():
    user = UserFactory()
    CustomerProfile.objects.filter(user=user).update(notify_email=False, notify_sms=False, notify_push=True)
    return user


def plan_accepted(order, toasts=LIVE_TOASTS) -> Notification:
    with transaction.atomic():  # the worker's transaction: the toast leaves once it commits
        notifications_plan_order_steps([Step(order.pk, "accepted", watching=False, online=True)], toasts=toasts)
        planned = Notification.objects.get(order=order, channel="push")
        # written as sent with the plan, nothing sent before the commit
        assert planned.status == "sent"
    return Notification.objects.get(pk=planned.pk)


def push_commands(notification: Notification) -> int:
    return sum(
        f'"notification_id": {notification.pk}' in body or f'"notification_id":{notification.pk}' in body
        for body in OutboxMessage.objects.filter(type=CUSTOMER_NOTIFY.name).values_list("body", flat=True)
    )


def test_a_toast_reaches_the_open_page_without_a_delivery_command():
    customer = browser_customer()
    order = OrderFactory(customer=customer)
    token = api_token_issue(user=customer)

    async def scenario():
        page = ws("/ws/me/", token)
        assert (await page.connect())[0]
        try:
            # when: the step is planned and its transaction commits
            await sync_to_async(wait_until, thread_sensitive=False)(
                lambda: customer_group(customer.pk) in LIVE_TOASTS.sender.members([customer_group(customer.pk)]),
                what="the page's socket in its group",
            )
            notification = await sync_to_async(plan_accepted, thread_sensitive=False)(order)
            # then: the open page has the toast
            frame = await page.receive_json_from(timeout=5)
            assert (frame["type"], frame["message"], frame["order_id"]) == (
                "notification",
                STEP_MESSAGES["accepted"],
                order.pk,
            )
            return notification
        finally:
            await page.disconnect()

    notification = async_to_sync(scenario)()
    # and: the row says sent, to the customer's group, and no delivery command was written
    assert (notification.status, notification.provider_id) == ("sent", customer_group(customer.pk))
    assert notification.sent_at is not None
    assert push_commands(notification) == 0


def test_a_plan_without_a_toast_road_sends_toasts_through_the_push_worker():
    customer = browser_customer()
    order = OrderFactory(customer=customer)
    with transaction.atomic():
        notifications_plan_order_steps([Step(order.pk, "accepted", watching=False, online=True)])
    notification = Notification.objects.get(order=order, channel="push")
    assert notification.status == "pending"
    assert push_commands(notification) == 1


def test_a_toast_for_a_page_closed_since_the_plan_is_recorded_as_not_sent():
    customer = browser_customer()
    order = OrderFactory(customer=customer)

    # when: the planner believed a page open, but none is when the toast leaves
    plan_accepted(order)

    # then: the row says why it was not sent, and nothing is queued for it
    notification = Notification.objects.get(order=order, channel="push")
    assert (notification.status, notification.reason, notification.sent_at) == (
        "skipped",
        "no page of the site open",
        None,
    )
    assert push_commands(notification) == 0


def test_toasts_redis_cannot_take_go_to_the_push_worker(settings):
    # given: the planner's channel layer points at a Redis that is not there
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["down"] = copy.deepcopy(layers["default"])
    layers["down"]["CONFIG"]["hosts"][0]["address"] = f"redis://127.0.0.1:{free_port()}/0"
    layers["down"]["CONFIG"]["hosts"][0]["socket_connect_timeout"] = 1
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    customer = browser_customer()
    order = OrderFactory(customer=customer)

    # when: a step with a toast is planned
    plan_accepted(order, toasts=LiveToasts(GroupSender("down")))

    # then: the toast is pending again, with a delivery command for the push worker to retry
    notification = Notification.objects.get(order=order, channel="push")
    assert (notification.status, notification.sent_at) == ("pending", None)
    wait_until(lambda: push_commands(notification) == 1, what="the delivery command")
