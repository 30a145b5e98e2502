"""Hourly caps on emails and texts, per customer and for the whole site, counted in Redis so that
they hold across notifier processes; and caps on verification links and codes, per customer and
per address, so that the verification page cannot be used to pump messages either."""

from __future__ import annotations

import threading
import uuid
from typing import cast

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client
from django.urls import reverse

from bus.outbox import outbox_write
from bus.redis_hints import hint_client
from notifications import limits
from notifications.events import CUSTOMER_NOTIFY
from notifications.limits import Cap
from notifications.models import Notification
from ordering.models import CustomerProfile
from tests.broker import queue_depth
from tests.factories import UserFactory, verified
from tests.integration.test_notifier import Inbox
from tests.support import ManagedProcess, free_port, wait_until


@pytest.fixture(autouse=True)
def fresh_caps():
    """The hourly caps start empty (customers' ids repeat from one test to the next)."""
    client = hint_client()
    for key in client.scan_iter(f"{django_settings.REDIS_PREFIX}:notify-cap:*"):
        client.delete(key)


def planned_email(user, n: int) -> Notification:
    """An email planned for ``user`` and its delivery command in the outbox (as the planner writes them)."""
    with transaction.atomic():
        notification = Notification.objects.create(
            key=f"cap-test:{user.pk}:{n}:{uuid.uuid4().hex[:8]}",
            customer=user,
            message="order_paid",
            channel="email",
            recipient=user.email,
            subject=f"Message {n}",
            body="Hello.",
        )
        outbox_write(
            event=CUSTOMER_NOTIFY,
            aggregate=f"customer:{user.pk}",
            payload={"notification_id": notification.pk, "customer_id": user.pk, "channel": "email"},
        )
    return notification


def settled(notifications: list[Notification]) -> bool:
    return not Notification.objects.filter(pk__in=[n.pk for n in notifications], status="pending").exists()


def outcome(notifications: list[Notification]) -> list[tuple[str, str]]:
    return sorted(Notification.objects.filter(pk__in=[n.pk for n in notifications]).values_list("status", "reason"))


@pytest.mark.slow
def test_caps_per_customer_and_for_the_site_hold_across_two_notifier_processes(bus, run_relay, tmp_path):
    # given: an SMTP server, and two email workers in processes of their own, sharing the caps
    # (2 emails an hour per customer, 5 for the whole site)
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = {
        "RABBITMQ_URL": bus,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "NOTIFY_EMAILS_PER_CUSTOMER": "2",
        "NOTIFY_EMAILS_PER_SITE": "5",
    }
    workers = [ManagedProcess("consume", "notifier.email", log_dir=tmp_path, **env) for _ in range(2)]
    try:
        wait_until(lambda: queue_depth(bus, "notifier.email")[1] == 2, timeout=60, what="both email workers")
        run_relay()
        # when: one customer is sent six emails at once
        busy = verified(UserFactory.create())
        first = [planned_email(busy, n) for n in range(6)]
        wait_until(lambda: settled(first), timeout=30, what="the first six")
        # then: two went out, four were held back by the customer's cap, none retried
        capped = ("skipped", "hourly cap reached: 2 emails to this customer")
        assert outcome(first) == [("sent", "")] * 2 + [capped] * 4
        assert len(inbox.to(busy.email)) == 2
        # when: six other customers are sent one each
        others = [verified(UserFactory.create()) for _ in range(6)]
        second = [planned_email(user, 0) for user in others]
        wait_until(lambda: settled(second), timeout=30, what="the next six")
        # then: the site's cap (5, two used already) let three through
        site = ("skipped", "hourly cap reached: 5 emails from the site")
        assert outcome(second) == [("sent", "")] * 3 + [site] * 3
        assert len(inbox.messages) == 5
        assert Notification.objects.filter(pk__in=[n.pk for n in first + second], attempts__gt=1).count() == 0
    finally:
        for worker in workers:
            worker.terminate()
        smtp.stop()
    # and both processes took part
    assert all("notification sent" in w.log() or "notification skipped" in w.log() for w in workers), [
        w.log()[-2000:] for w in workers
    ]


def test_a_cap_counts_all_or_nothing_and_a_message_once_under_concurrency():
    # given: a customer's cap of 3 and a site cap of 4, shared by 20 threads sending at once
    caps = [Cap("email:customer:1", 3, "emails to this customer"), Cap("email:site", 4, "emails from the site")]
    other = [Cap("email:customer:2", 3, "emails to this customer"), Cap("email:site", 4, "emails from the site")]
    results: list[bool] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        full = limits.reserve(caps if n % 2 else other, f"message-{n}")
        with lock:
            results.append(full is None)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: exactly the site's four went through, none of the customers over three
    assert results.count(True) == 4
    client = hint_client()
    site = client.zcard(limits.key("email:site"))
    one, two = client.zcard(limits.key("email:customer:1")), client.zcard(limits.key("email:customer:2"))
    assert (site, one + two) == (4, 4) and one <= 3 and two <= 3
    # a message counted again (a redelivered command) takes no second place
    counted = cast(list[bytes], client.zrange(limits.key("email:site"), 0, 0))[0].decode()
    assert limits.reserve(caps if counted in {f"message-{n}" for n in range(1, 20, 2)} else other, counted) is None
    assert client.zcard(limits.key("email:site")) == 4
    # and one given back frees its place
    limits.release([Cap("email:site", 4, "")], counted)
    assert client.zcard(limits.key("email:site")) == 3


@pytest.mark.django_db
def test_verification_links_and_codes_are_capped_per_customer_and_per_address(settings):
    settings.VERIFY_SENDS_PER_CUSTOMER = 2
    settings.VERIFY_SENDS_PER_ADDRESS = 3
    number = "+49 30 9999999"
    first, second = UserFactory.create(), UserFactory.create()
    CustomerProfile.objects.filter(user__in=[first, second]).update(phone=number)
    clients = {}
    for user in (first, second):
        clients[user] = Client()
        clients[user].force_login(user)

    def ask(user, channel="sms"):
        return clients[user].post(reverse("verify_addresses"), {"channel": channel})

    # when: the first customer asks for codes: two are sent, the third refused
    assert [ask(first).status_code for _ in range(2)] == [302, 302]
    refused = ask(first)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "enough of those this hour" in refused.content.decode()
    # (links to their email are counted apart from codes to their phone)
    assert ask(first, "email").status_code == 302
    # when: another account names the same number: one more code, then the number's cap
    assert ask(second).status_code == 302
    assert ask(second).status_code == 429
    # then: only the codes allowed were planned
    codes = Notification.objects.filter(message="verify_phone")
    assert codes.count() == 3 and set(codes.values_list("recipient", flat=True)) == {number}
    assert Notification.objects.filter(message="verify_email", customer=first).count() == 1
