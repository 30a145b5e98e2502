"""The notifier on the real broker, database, Redis and a real SMTP server (aiosmtpd on a
port of its own): each step of an order told once by each channel the customer chose and
never by another; no email or SMS for a step the customer watches live; a failing SMS
provider retried, then dead-lettered, while everything else goes on; the welcome on sign-up;
the delivery log's resend."""

from __future__ import annotations

import email
import email.policy
import threading
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection, transaction
from django.test import Client
from django.test.signals import template_rendered
from django.test.utils import CaptureQueriesContext

from bus.models import ProcessedMessage
from bus.outbox import outbox_write
from consumers.notifier import notifier_email, notifier_plan, notifier_push, notifier_sms
from live.presence import is_watched
from notifications.delivery import Sent
from notifications.events import CUSTOMER_NOTIFY
from notifications.models import Notification
from notifications.services import (
    STEP_MESSAGES,
    Step,
    notification_deliver,
    notification_resend,
    notifications_plan_order_steps,
    render,
)
from ordering.events import ORDER_STATUS_CHANGED
from ordering.models import CustomerProfile, Order
from ordering.services import api_token_issue, order_transition_by_staff
from tests.broker import queue_depth
from tests.factories import (
    MenuItemFactory,
    OrderFactory,
    StaffMembershipFactory,
    UserFactory,
    WalletFactory,
    verified,
)
from tests.integration.sockets import ws
from tests.support import free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
STEPS = ["paid", "accepted", "ready", "out_for_delivery", "delivered"]  # preparing is not told


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["X-Envelope-To"] == address]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    yield inbox
    controller.stop()


@pytest.fixture
def workers(smtp, relay, payment_workers, run_consumers):
    """The relay, the payment chain and the notifier, each channel in a runner of its own (as
    the Procfile runs them), so one slow channel holds up no other."""
    for channel in ([notifier_plan, notifier_push], [notifier_email], [notifier_sms]):
        run_consumers(*channel)


@pytest.fixture
def kitchen(restaurant):
    return {
        "dish": MenuItemFactory(category__restaurant=restaurant, name="Risotto", price=Decimal("12.00")),
        "cook": StaffMembershipFactory(restaurant=restaurant).user,
    }


def customer_with(*, email_=True, sms=False, push=False, phone="+49 30 1234567", while_watching=False, funds="50.00"):
    user = UserFactory()
    CustomerProfile.objects.filter(user=user).update(
        notify_email=email_, notify_sms=sms, notify_push=push, phone=phone, notify_while_watching=while_watching
    )
    WalletFactory(user=user, balance=funds)
    return verified(user, email=True, phone=bool(phone))  # emails and texts go only to verified addresses


def place_paid(customer, restaurant, kitchen) -> Order:
    order = OrderFactory(customer=customer, dish=kitchen["dish"], delivery_address="7 Elm Street")
    wait_until(lambda: Order.objects.get(pk=order.pk).status == "paid", what=f"order {order.pk} to be paid")
    return order


def move(order: Order, kitchen, *steps: str) -> None:
    for step in steps:
        order_transition_by_staff(order_id=order.pk, user=kitchen["cook"], to=step)


def settled(**filters) -> bool:
    """No notification of these is waiting for an attempt any more."""
    rows = Notification.objects.filter(**filters)
    return rows.exists() and not rows.filter(status=Notification.Status.PENDING).exists()


def log_of(user) -> list[tuple[str, str, str]]:
    return sorted(Notification.objects.filter(customer=user).values_list("message", "channel", "status"))


def test_every_template_renders_for_every_channel_it_is_planned_for(customer, restaurant, kitchen):
    order = OrderFactory(customer=customer, dish=kitchen["dish"], quantity=2, delivery_address="7 Elm Street")
    context = {
        "customer": customer,
        "order": order,
        "lines": list(order.lines.all()),
        "amount": order.total,
        "reason": "Out of rice",
        "link": "http://x/orders/1/",
        "orders_link": "http://x/orders/",
        "wallet_link": "http://x/wallet/",
        "profile_link": "http://x/account/",
    }
    for message in [*STEP_MESSAGES.values(), "order_refunded"]:
        for channel in ("email", "sms", "push"):
            rendered = render(message, channel, context)
            assert rendered.body, (message, channel)
            if channel == "sms":
                assert len(rendered.body) <= 320 and "\n" not in rendered.body, (message, rendered.body)
            else:
                assert rendered.subject and f"#{order.pk}" in rendered.subject + rendered.body, (message, channel)
    # plain text: nothing HTML-escaped
    assert "&amp;" not in render("order_paid", "email", {**context, "order": order}).body


def test_each_step_is_told_once_by_each_chosen_channel_and_never_by_another(
    workers, smtp, restaurant, kitchen, settings
):
    # given: one customer who chose email and SMS, one who chose only the browser (and has a
    # page of the site open), one who chose nothing
    mail_and_text = customer_with(email_=True, sms=True)
    browser_only = customer_with(email_=False, push=True)
    nothing = customer_with(email_=False)
    token = api_token_issue(user=browser_only)
    orders = {}

    async def scenario():
        me = ws("/ws/me/", token)
        connected, _ = await me.connect()
        assert connected
        try:
            # when: each order goes through every step to delivered
            for user in (mail_and_text, browser_only, nothing):
                order = await sync_to_async(place_paid, thread_sensitive=False)(user, restaurant, kitchen)
                await sync_to_async(move, thread_sensitive=False)(
                    order, kitchen, "accepted", "preparing", "ready", "out_for_delivery", "delivered"
                )
                orders[user.pk] = order
            frames = []
            while len(frames) < len(STEPS):
                frames.append(await me.receive_json_from(timeout=20))
            # then: the open page got one notification frame per step, and nothing more
            assert [f["message"] for f in frames if f["type"] == "notification"] == [STEP_MESSAGES[s] for s in STEPS]
            assert all(f["order_id"] == orders[browser_only.pk].pk for f in frames)
            assert await me.receive_nothing(timeout=1)
        finally:
            await me.disconnect()

    async_to_sync(scenario)()
    wait_until(
        lambda: settled(customer=mail_and_text) and len(smtp.to(mail_and_text.email)) == len(STEPS), what="the emails"
    )

    # then: the emailing, texting customer got one email and one text per step
    emails = smtp.to(mail_and_text.email)
    order = orders[mail_and_text.pk]
    assert sorted(m["Subject"] for m in emails) == sorted(
        n.subject for n in Notification.objects.filter(customer=mail_and_text, channel="email")
    )
    assert any(m["Subject"] == f"Order #{order.pk} is paid — {restaurant.name} has it" for m in emails)
    assert all(f"/orders/{order.pk}/" in m.get_content() or "/orders/" in m.get_content() for m in emails)
    assert len({m["Message-ID"] for m in emails}) == len(STEPS)
    # (each row says sent once its transaction commits, just after its send)
    expected = sorted((STEP_MESSAGES[s], channel, "sent") for s in STEPS for channel in ("email", "sms"))
    wait_until(lambda: log_of(mail_and_text) == expected, what="every email and SMS logged as sent")
    # the browser-only customer: toasts only; the one who chose nothing: nothing at all
    toasts = sorted((STEP_MESSAGES[s], "push", "sent") for s in STEPS)
    wait_until(lambda: log_of(browser_only) == toasts, what="every toast logged as sent")
    assert log_of(nothing) == []
    assert smtp.to(browser_only.email) == [] and smtp.to(nothing.email) == []

    # when: the same step is announced again (a replayed event), and a delivery command is
    # delivered twice
    paid = Notification.objects.get(customer=mail_and_text, message="order_paid", channel="email")
    with transaction.atomic():
        replayed = outbox_write(
            event=ORDER_STATUS_CHANGED,
            aggregate=f"order:{order.pk}",
            payload={
                "order_id": order.pk,
                "customer_id": mail_and_text.pk,
                "restaurant_id": restaurant.pk,
                "status": "paid",
                "from_status": "pending_payment",
                "version": 2,
                "at": "2026-12-02T10:00:00+00:00",
            },
        )
        outbox_write(
            event=CUSTOMER_NOTIFY,
            aggregate=f"customer:{mail_and_text.pk}",
            payload={"notification_id": paid.pk, "customer_id": mail_and_text.pk, "channel": "email"},
        )
        # a marker behind them on the email queue, to know they were handled
        marker = outbox_write(
            event=CUSTOMER_NOTIFY,
            aggregate="customer:marker",
            payload={"notification_id": 10**9, "customer_id": mail_and_text.pk, "channel": "email"},
        )
    wait_until(
        lambda: (
            ProcessedMessage.objects.filter(consumer="notifier.email", message_id=marker.message_id).exists()
            and ProcessedMessage.objects.filter(consumer="notifier.plan", message_id=replayed.message_id).exists()
        ),
        what="the replays to be handled",
    )
    # then: nobody was told anything twice
    assert len(smtp.to(mail_and_text.email)) == len(STEPS)
    assert log_of(mail_and_text) == expected


def test_no_email_or_text_for_a_step_the_customer_watches_live(workers, smtp, restaurant, kitchen):
    # given: a customer who chose email, SMS and the browser; another who wants email and SMS
    # even while watching
    watcher = customer_with(email_=True, sms=True, push=True)
    insists = customer_with(email_=True, sms=True, while_watching=True)
    mine = place_paid(watcher, restaurant, kitchen)
    theirs = place_paid(insists, restaurant, kitchen)
    staff_token = api_token_issue(user=kitchen["cook"])

    async def scenario():
        pages = [
            ws(f"/ws/orders/{mine.pk}/", await sync_to_async(api_token_issue)(user=watcher)),
            ws(f"/ws/orders/{theirs.pk}/", await sync_to_async(api_token_issue)(user=insists)),
            # staff looking at the customer's order do not make it watched
            ws(f"/ws/orders/{theirs.pk}/", staff_token),
        ]
        try:
            for page in pages:
                assert (await page.connect())[0]
                await page.receive_json_from(timeout=5)  # the snapshot
            # when: the tracking pages say they are visible, and the kitchen accepts both orders
            for page in pages:
                await page.send_json_to({"type": "watching", "visible": True})
            await pages[2].send_json_to({"type": "watching", "visible": "yes"})
            assert (await pages[2].receive_json_from(timeout=5))["type"] == "error"
            await sync_to_async(wait_until, thread_sensitive=False)(
                lambda: is_watched(mine.pk) and is_watched(theirs.pk)
            )
            for order in (mine, theirs):
                await sync_to_async(move, thread_sensitive=False)(order, kitchen, "accepted")
            await sync_to_async(wait_until, thread_sensitive=False)(
                lambda: settled(message="order_accepted", order__in=[mine, theirs]), what="the accepted step"
            )
            # and: the watcher's tab goes to the background before the order is ready
            await pages[0].send_json_to({"type": "watching", "visible": False})
            await sync_to_async(wait_until, thread_sensitive=False)(lambda: not is_watched(mine.pk))
            await sync_to_async(move, thread_sensitive=False)(mine, kitchen, "preparing", "ready")
        finally:
            for page in pages:
                await page.disconnect()

    async_to_sync(scenario)()
    wait_until(lambda: settled(order=mine, message="order_ready"), what="the ready step")

    def accepted(order):
        return dict(Notification.objects.filter(order=order, message="order_accepted").values_list("channel", "status"))

    # then: no email or SMS for the step the watcher saw happen (and no toast: no other page
    # of the site was open)
    assert accepted(mine) == {"email": "skipped", "sms": "skipped", "push": "skipped"}
    assert set(
        Notification.objects.filter(order=mine, message="order_accepted", channel__in=["email", "sms"]).values_list(
            "reason", flat=True
        )
    ) == {"watching the order live"}
    # (the toast was not even queued: no page of the site was open when the step was planned)
    push = Notification.objects.get(order=mine, message="order_accepted", channel="push")
    assert (push.reason, push.attempts) == ("no page of the site open", 0)
    # the step they did not watch came by email and SMS
    assert dict(Notification.objects.filter(order=mine, message="order_ready").values_list("channel", "status")) == {
        "email": "sent",
        "sms": "sent",
        "push": "skipped",
    }  # (no page of the site open by then)
    # the customer who asked for them got email and SMS while watching
    assert accepted(theirs) == {"email": "sent", "sms": "sent"}
    subjects = [m["Subject"] for m in smtp.to(watcher.email)]
    assert f"Order #{mine.pk} is ready" in subjects and not any("accepted" in s for s in subjects)
    assert any("accepted" in m["Subject"] for m in smtp.to(insists.email))
    # and a closed page leaves nobody watching
    assert not is_watched(mine.pk) and not is_watched(theirs.pk)


def test_a_failing_sms_provider_is_retried_then_dead_lettered_without_holding_up_others(
    workers, smtp, restaurant, kitchen, settings
):
    # given: a customer whose number the provider fails on (the logging provider fails numbers
    # ending in 0000), and another whose number works; both chose email and SMS
    unlucky = customer_with(email_=True, sms=True, phone="+49 30 5550000")
    lucky = customer_with(email_=True, sms=True, phone="+49 30 5551234")
    # when: both orders are paid
    first = place_paid(unlucky, restaurant, kitchen)
    second = place_paid(lucky, restaurant, kitchen)
    wait_until(lambda: settled(order__in=[first, second]), timeout=30, what="every delivery to end")

    # then: the failing SMS was tried once and then once per retry delay, and dead-lettered
    failed = Notification.objects.get(order=first, channel="sms")
    assert failed.status == "failed"
    assert failed.attempts == len(settings.NOTIFIER_RETRY_DELAYS) + 1
    assert "provider unavailable" in failed.reason
    wait_until(lambda: queue_depth(settings.RABBITMQ_URL, "notifier.sms.dead")[0] == 1, what="the dead letter")
    # while the same customer's email and the other customer's SMS went out at once
    assert Notification.objects.get(order=first, channel="email").status == "sent"
    other = Notification.objects.get(order=second, channel="sms")
    assert other.status == "sent" and other.attempts == 1
    assert other.sent_at < failed.created_at + _seconds(sum(settings.NOTIFIER_RETRY_DELAYS))
    assert len(smtp.to(unlucky.email)) == 1

    # when: the customer's number is one the provider takes (verified), and the operator
    # replays the dead letter
    CustomerProfile.objects.filter(user=unlucky).update(phone="+49 30 5559999")
    verified(unlucky, email=False, phone=True)
    Notification.objects.filter(pk=failed.pk).update(recipient="+49 30 5559999")
    with transaction.atomic():
        outbox_write(
            event=CUSTOMER_NOTIFY,
            aggregate=f"customer:{unlucky.pk}",
            payload={"notification_id": failed.pk, "customer_id": unlucky.pk, "channel": "sms"},
        )
    # then: it is sent, once
    wait_until(lambda: Notification.objects.get(pk=failed.pk).status == "sent", what="the replayed SMS")
    assert Notification.objects.get(pk=failed.pk).attempts == 1


def _seconds(value: float):
    from datetime import timedelta

    return timedelta(seconds=value)


def test_a_new_customer_is_welcomed_once(workers, smtp):
    # when: someone signs up on the site
    client = Client()
    response = client.post(
        "/signup/",
        {
            "username": "newcomer",
            "email": "newcomer@example.com",
            "password": "a-long-pass-phrase",
            "password_confirm": "a-long-pass-phrase",
        },
    )
    assert response.status_code in (302, 303), response.content[:500]
    # then: one welcome email (SMS is off by default, and there is no number yet)
    wait_until(lambda: len(smtp.to("newcomer@example.com")) == 1, what="the welcome email")
    welcome = smtp.to("newcomer@example.com")[0]
    assert welcome["Subject"] == "Welcome to Passline, newcomer"
    assert "/account/" in welcome.get_content()
    # (the email leaves before the row that says so commits: the send is inside its transaction)
    customer = Notification.objects.get(key__startswith="welcome:").customer
    wait_until(lambda: log_of(customer) == [("welcome", "email", "sent")], what="the welcome logged as sent")


def test_the_admin_reads_a_customers_delivery_log_and_resends(workers, smtp, restaurant, kitchen):
    # given: a customer told by email that the order is paid
    user = customer_with(email_=True)
    order = place_paid(user, restaurant, kitchen)
    wait_until(lambda: len(smtp.to(user.email)) == 1, what="the paid email")
    original = Notification.objects.get(customer=user)
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    # when: the operator looks up the customer's log
    page = client.get("/admin/notifications/notification/", {"q": f"customer:{user.pk}"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1 and f">#{order.pk}</a>" in page.content.decode()
    assert original.subject in client.get(f"/admin/notifications/notification/{original.pk}/change/").content.decode()
    other = client.get("/admin/notifications/notification/", {"q": f"customer:{10**9}"})
    assert other.context["cl"].result_count == 0
    # and resends the email
    response = client.post(
        "/admin/notifications/notification/",
        {"action": "resend", "_selected_action": [original.pk], "q": f"customer:{user.pk}"},
    )
    assert response.status_code == 302
    # then: it arrives a second time, as a new row of the log that names the first
    wait_until(lambda: len(smtp.to(user.email)) == 2, what="the resent email")
    resent = Notification.objects.get(resend_of=original)
    wait_until(lambda: Notification.objects.get(pk=resent.pk).status == "sent")
    subjects = [m["Subject"] for m in smtp.to(user.email)]
    assert subjects[0] == subjects[1] == original.subject
    # a customer's page has no such action
    client.force_login(user)
    assert client.get("/admin/notifications/notification/").status_code == 302


# Only what is sent is written when it is planned ---------------------------------------------


@pytest.fixture
def renders():
    """The names of the templates rendered while the test runs (Django's test instrumentation
    sends ``template_rendered`` for each)."""
    names: list[str] = []

    def record(sender, template, context, **kwargs):
        names.append(template.name)

    template_rendered.connect(record)
    yield names
    template_rendered.disconnect(record)


def plan(*steps: Step) -> list[Notification]:
    """Plan the steps as the notifier's plan worker does: in the transaction of the message."""
    with transaction.atomic():
        return notifications_plan_order_steps(list(steps))


def paid_and_watched(kitchen) -> tuple[object, Order]:
    """A customer who chose every channel, with their paid order of two risottos."""
    user = customer_with(email_=True, sms=True, push=True)
    return user, OrderFactory(customer=user, dish=kitchen["dish"], quantity=2, paid=True, delivery_address="7 Elm St")


def test_a_watched_step_writes_no_email_or_text_and_reads_no_lines(kitchen, renders):
    # given: a customer watching their paid order live, with a page of the site open
    user, order = paid_and_watched(kitchen)
    renders.clear()
    # when: the paid step is planned
    with CaptureQueriesContext(connection) as queries:
        planned = plan(Step(order.pk, "paid", watching=True, online=True))
    # then: only the toast was rendered; the email and the text were not, nor were the order's
    # lines read (only the paid email shows them)
    assert renders == ["notifications/order_paid.push.txt"]
    assert not any("ordering_orderline" in q["sql"] for q in queries.captured_queries)
    # nor the customer's verified addresses (only an email or text that could go out needs them)
    assert not any("notifications_verifiedaddress" in q["sql"] for q in queries.captured_queries)
    rows = {n.channel: n for n in Notification.objects.filter(order=order)}
    assert {c: (n.status, n.reason) for c, n in rows.items()} == {
        "email": ("skipped", "watching the order live"),
        "sms": ("skipped", "watching the order live"),
        "push": ("pending", ""),
    }
    assert [(rows[c].subject, rows[c].body) for c in ("email", "sms")] == [("", ""), ("", "")]
    assert rows["push"].subject == f"Order #{order.pk} is paid" and rows["push"].body
    assert len(planned) == 3


def test_a_skipped_paid_email_resent_is_written_in_full_and_the_admin_says_why_it_was_blank(kitchen, settings):
    # given: a paid email not sent (and not written) because the customer watched the order
    user, order = paid_and_watched(kitchen)
    plan(Step(order.pk, "paid", watching=True, online=False))
    skipped = Notification.objects.get(order=order, channel="email")
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    # then: the admin shows it was not written, and why
    page = client.get(f"/admin/notifications/notification/{skipped.pk}/change/").content.decode()
    assert "Not written: it was not sent (watching the order live)." in page
    # when: the operator resends it
    response = client.post("/admin/notifications/notification/", {"action": "resend", "_selected_action": [skipped.pk]})
    assert response.status_code == 302
    # then: the new row is the whole paid email, its lines and total, as the plan would have
    # written it
    resent = Notification.objects.get(resend_of=skipped)
    assert resent.status == "pending" and resent.recipient == user.email
    assert resent.subject == f"Order #{order.pk} is paid — {order.restaurant.name} has it"
    lines = [" ".join(line.split()) for line in resent.body.splitlines()]
    assert "2 × Risotto €24.00 (VAT 7.00%)" in lines
    assert "Total €24.00, VAT included:" in lines
    assert f"we took 24.00 EUR from your wallet for order #{order.pk} at" in lines
    assert f"Follow it live: {settings.SITE_URL}/orders/{order.pk}/" in lines
    # and: it is sent as written
    sent = []

    def send(notification):
        sent.append(notification.body)
        return Sent(provider_id="test")

    with transaction.atomic():
        notification_deliver(notification_id=resent.pk, attempt=1, send=send)
    assert sent == [resent.body]
    # (the skipped row stays as it was logged)
    assert Notification.objects.get(pk=skipped.pk).body == ""


def test_a_skipped_refund_resent_carries_the_refunds_amount_and_reason(kitchen):
    # given: a partial refund told while the customer watched: email and text not sent
    user, order = paid_and_watched(kitchen)
    plan(Step(order.pk, "refunded", watching=True, online=False, amount=Decimal("7.50"), reason="out of rice"))
    skipped = {n.channel: n for n in Notification.objects.filter(order=order, message="order_refunded")}
    assert {c: (n.status, n.body) for c, n in skipped.items() if c != "push"} == {
        "email": ("skipped", ""),
        "sms": ("skipped", ""),
    }
    assert skipped["email"].event_values == {"amount": "7.50", "reason": "out of rice"}
    # when: both are resent
    email_ = Notification.objects.get(pk=notification_resend(notification_id=skipped["email"].pk).pk)
    text = Notification.objects.get(pk=notification_resend(notification_id=skipped["sms"].pk).pk)
    # then: they tell the refund's amount (not the order's total) and its reason
    assert email_.subject == f"Order #{order.pk}: 7.50 EUR refunded"
    assert "cancelled: out of rice." in email_.body and "We refunded 7.50 EUR to your wallet." in email_.body
    assert text.body == f"Passline: 7.50 EUR for order #{order.pk} is back in your wallet (out of rice)."


def test_a_plan_writes_each_key_once_in_one_statement_without_a_savepoint(kitchen):
    # given: a customer's paid step, planned once
    user, order = paid_and_watched(kitchen)
    first = plan(Step(order.pk, "paid", watching=False, online=True))
    # when: the same step is planned again (a replayed event, a second notifier)
    with CaptureQueriesContext(connection) as queries:
        again = plan(Step(order.pk, "paid", watching=False, online=True))
    # then: nothing new was written or commanded, and no savepoint was needed to find that out
    assert first and again == []
    assert Notification.objects.filter(order=order).count() == len(first)
    assert not any("SAVEPOINT" in q["sql"] for q in queries.captured_queries)
    assert (
        sum(q["sql"].startswith("INSERT IGNORE INTO `notifications_notification`") for q in queries.captured_queries)
        == 1
    )


def test_a_plan_refused_for_another_reason_than_a_planned_key_writes_nothing(kitchen):
    from notifications.services import NotificationsNotWritten, _insert_new

    # given: two rows to write, one of them for a customer who does not exist (IGNORE would
    # only warn of the foreign key and leave it out)
    user, order = paid_and_watched(kitchen)
    rows = [
        Notification(key=f"test:{order.pk}:ok", customer=user, message="order_paid", channel="push"),
        Notification(key=f"test:{order.pk}:gone", customer_id=987654321, message="order_paid", channel="push"),
    ]
    # when: they are written
    with pytest.raises(NotificationsNotWritten, match=f"test:{order.pk}:gone"), transaction.atomic():
        _insert_new(rows)
    # then: the plan's transaction rolled back, with neither row
    assert not Notification.objects.filter(key__startswith=f"test:{order.pk}:").exists()
