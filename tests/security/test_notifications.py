"""Notifications that cannot be used to pump messages: emails and texts only to verified
addresses; verification by an expiring signed link (email) and an expiring, hashed code with few
guesses (SMS); a failed payment told once, by the preferred channel; providers' permanent and
temporary failures told apart; production refuses the logging SMS provider.

Real MariaDB, Redis, RabbitMQ and an SMTP server (aiosmtpd); texts go to a recording provider
named by SMS_PROVIDER, or to a local HTTP server standing in for Twilio's API."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse

from bus.outbox import outbox_write
from bus.redis_hints import hint_client
from consumers.notifier import SENDERS, notifier_email, notifier_plan, notifier_push, notifier_sms
from notifications.addresses import address_is_verified
from notifications.delivery import SmsError, SmsPermanentError, TwilioSmsProvider
from notifications.models import Notification, PhoneCode
from notifications.services import (
    WITHHELD,
    notification_deliver,
    notifications_plan_order_step,
    notifications_plan_welcome,
)
from ordering.events import ORDER_STATUS_CHANGED
from ordering.models import CustomerProfile, Order
from ordering.services import order_transition
from ordering.status import Actor
from tests.factories import MenuItemFactory, OrderFactory, UserFactory, verified
from tests.integration.test_notifier import Inbox
from tests.integration.test_settings import manage
from tests.support import free_port, wait_until

PHONE = "+49 30 1234567"


class RecordingSms:
    """An SMS provider that keeps what it is given (the network stand-in for a real one)."""

    sent: ClassVar[list[tuple[str, str]]] = []

    def send(self, *, to: str, body: str, from_: str) -> str:
        self.sent.append((to, body))
        return f"SMtest{len(self.sent)}"


@pytest.fixture(autouse=True)
def fresh_caps():
    """The hourly caps start empty (customers' ids repeat from one test to the next)."""
    client = hint_client()
    for key in client.scan_iter(f"{django_settings.REDIS_PREFIX}:notify-cap:*"):
        client.delete(key)
    RecordingSms.sent.clear()


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.SMS_PROVIDER = "tests.security.test_notifications.RecordingSms"
    yield inbox
    controller.stop()


def customer(*, email=True, sms=True, push=False, phone=PHONE):
    user = UserFactory.create()
    CustomerProfile.objects.filter(user=user).update(notify_email=email, notify_sms=sms, notify_push=push, phone=phone)
    return user


def deliver_pending(**filters) -> list[Notification]:
    """Deliver what is planned, as the notifier's channel workers would (without the bus)."""
    delivered = []
    for pk, channel in Notification.objects.filter(status="pending", **filters).values_list("pk", "channel"):
        notification = notification_deliver(notification_id=pk, attempt=1, send=SENDERS[channel])
        assert notification is not None
        delivered.append(notification)
    return delivered


def statuses(**filters) -> dict[str, tuple[str, str]]:
    return {n.channel: (n.status, n.reason) for n in Notification.objects.filter(**filters)}


def link_in(text: str) -> str:
    match = re.search(r"https?://\S+?(/account/verify/email/\S+/)", text)
    assert match, text
    return match[1]


# --- only verified addresses ---------------------------------------------------------------------


@pytest.mark.django_db
def test_unverified_email_and_phone_get_nothing_and_the_log_says_why(smtp):
    # given: a customer who chose email and texts and verified neither, and one who verified both
    unverified = customer()
    trusted = verified(customer(), email=True, phone=True)
    dish = MenuItemFactory()
    orders = {user: OrderFactory.create(customer=user, dish=dish, paid=True) for user in (unverified, trusted)}
    # when: each order's paid step is planned and delivered
    for order in orders.values():
        notifications_plan_order_step(order_id=order.pk, step="paid", watching=False)
    deliver_pending()
    # then: the unverified customer got nothing, and the log says why; the other got both
    assert statuses(order=orders[unverified]) == {
        "email": ("skipped", "email address not verified"),
        "sms": ("skipped", "phone number not verified"),
    }
    assert statuses(order=orders[trusted]) == {"email": ("sent", ""), "sms": ("sent", "")}
    assert smtp.to(unverified.email) == [] and len(smtp.to(trusted.email)) == 1
    assert [to for to, _ in RecordingSms.sent] == [PHONE]


@pytest.mark.django_db
def test_an_address_changed_after_planning_or_resent_to_unverified_gets_nothing(smtp):
    # given: a verified customer with a paid email planned, not yet delivered
    user = verified(customer(sms=False))
    order = OrderFactory.create(customer=user, paid=True)
    (planned,) = notifications_plan_order_step(order_id=order.pk, step="paid", watching=False)
    # when: the customer changes their email address before it is delivered (saving the account)
    user.email = "someone-else@example.com"
    user.save()
    deliver_pending()
    # then: it went to neither address, and the new address is not verified
    assert statuses(pk=planned.pk) == {"email": ("skipped", "no longer the customer's address")}
    assert smtp.messages == []
    assert not address_is_verified(user=user, channel="email")
    # and: changing it back does not make the old address verified again
    user.email = planned.recipient
    user.save()
    assert not address_is_verified(user=user, channel="email")
    # nor does a row rewritten to another recipient get sent there (an operator's resend path)
    Notification.objects.filter(pk=planned.pk).update(status="pending", recipient="victim@example.com")
    deliver_pending()
    assert statuses(pk=planned.pk) == {"email": ("skipped", "no longer the customer's address")}
    assert smtp.messages == []


# --- email: a signed, expiring link ------------------------------------------------------------


@pytest.mark.django_db
def test_the_welcome_email_carries_a_link_that_verifies_the_address(smtp):
    # given: someone signs up (their address unverified)
    client = Client()
    response = client.post(
        "/signup/",
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password": "a-long-pass-phrase",
            "password_confirm": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newbie")
    # when: the notifier welcomes them
    (welcome,) = notifications_plan_welcome(customer_id=user.pk)
    deliver_pending(pk=welcome.pk)
    # then: the email has a link, which the log withholds
    (mail,) = smtp.to("newbie@example.com")
    path = link_in(mail.get_content())
    logged = Notification.objects.get(pk=welcome.pk)
    assert logged.status == "sent" and WITHHELD in logged.body and "/account/verify/email/" not in logged.body
    # when: the link is opened (as a mail scanner would): nothing is verified yet
    page = Client().get(path)
    assert page.status_code == 200 and "newbie@example.com" in page.content.decode()
    assert not address_is_verified(user=user, channel="email")
    # and confirmed, signed in or not
    done = Client().post(path)
    assert done.status_code == 200 and 'id="verify-done"' in done.content.decode()
    assert address_is_verified(user=user, channel="email")


@pytest.mark.django_db
def test_an_email_link_asked_for_works_once_for_its_address_and_expires(smtp, settings):
    user = customer(sms=False)
    client = Client()
    client.force_login(user)
    # when: the customer asks for a link on the verification page
    response = client.post(reverse("verify_addresses"), {"channel": "email"})
    assert response.status_code == 302
    deliver_pending(customer=user)
    path = link_in(smtp.to(user.email)[0].get_content())
    # then: a tampered link verifies nothing
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]
    assert client.post(tampered).status_code == 400
    assert not address_is_verified(user=user, channel="email")
    # and a link for an address no longer on the account verifies nothing
    user.email = "changed@example.com"
    user.save()
    refused = client.post(path)
    assert refused.status_code == 400 and "no longer on the account" in refused.content.decode()
    assert not address_is_verified(user=user, channel="email")
    # when: the customer asks for a link for the new address, and it is followed in time
    client.post(reverse("verify_addresses"), {"channel": "email"})
    deliver_pending(customer=user)
    fresh = link_in(smtp.to("changed@example.com")[0].get_content())
    assert client.post(fresh).status_code == 200
    assert address_is_verified(user=user, channel="email")
    page = client.get(reverse("verify_addresses"))
    assert 'id="email-state" data-verified="yes"' in page.content.decode()
    # then: a link past its age verifies nothing
    user.email = "third@example.com"
    user.save()
    client.post(reverse("verify_addresses"), {"channel": "email"})
    deliver_pending(customer=user)
    late = link_in(smtp.to("third@example.com")[0].get_content())
    settings.VERIFY_EMAIL_LINK_SECONDS = 1
    time.sleep(2.1)
    expired = client.post(late)
    assert expired.status_code == 400 and "expired" in expired.content.decode()
    assert not address_is_verified(user=user, channel="email")


# --- phone: a hashed, expiring code with few guesses ---------------------------------------------


def ask_code(client: Client, user) -> str:
    response = client.post(reverse("verify_addresses"), {"channel": "sms"})
    assert response.status_code == 302, response.content.decode()[:500]
    deliver_pending(customer=user, message="verify_phone")
    to, body = RecordingSms.sent[-1]
    assert to == CustomerProfile.objects.get(user=user).phone
    code = re.search(r"\b(\d{6})\b", body)
    assert code, body
    return code[1]


def type_code(client: Client, code: str):
    return client.post(reverse("verify_addresses"), {"code": code})


@pytest.mark.django_db
def test_a_texted_code_verifies_the_phone_and_is_stored_only_as_a_digest(smtp):
    user = customer(email=False)
    client = Client()
    client.force_login(user)
    code = ask_code(client, user)
    # the code is in the text only: neither the log nor the code's row holds it
    sent = Notification.objects.get(customer=user, message="verify_phone")
    assert sent.status == "sent" and code not in sent.body and WITHHELD in sent.body
    row = PhoneCode.objects.get(user=user)
    assert code not in row.digest and len(row.digest) == 64
    # when: the customer types it (with a space, as people do)
    response = type_code(client, f"{code[:3]} {code[3:]}")
    # then: the number is verified, and the code is spent
    assert response.status_code == 302
    assert address_is_verified(user=user, channel="sms")
    assert not PhoneCode.objects.filter(user=user).exists()
    # when: the number changes on the account page, it is no longer verified
    client.post(reverse("profile"), {"phone": "+49 30 7654321", "default_address": "1 Test Lane", "notify_sms": "on"})
    assert not address_is_verified(user=user, channel="sms")
    # and texts stop until the new number is verified
    order = OrderFactory.create(customer=user, paid=True)
    notifications_plan_order_step(order_id=order.pk, step="paid", watching=False)
    assert statuses(order=order) == {"sms": ("skipped", "phone number not verified")}


@pytest.mark.django_db
def test_wrong_codes_are_limited_and_codes_expire(smtp, settings):
    user = customer(email=False)
    client = Client()
    client.force_login(user)
    code = ask_code(client, user)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    # when: wrong codes are typed, as many as a code takes
    answers = [type_code(client, wrong) for _ in range(settings.VERIFY_PHONE_CODE_ATTEMPTS)]
    # then: each is refused as a form error; then even the right code is refused
    assert [a.status_code for a in answers] == [400] * settings.VERIFY_PHONE_CODE_ATTEMPTS
    assert "1 more tries" in answers[-2].content.decode()
    assert "Too many wrong codes" in answers[-1].content.decode()
    assert "Too many wrong codes" in type_code(client, code).content.decode()
    assert not address_is_verified(user=user, channel="sms")
    # and a code typed past its time is refused
    settings.VERIFY_PHONE_CODE_SECONDS = 1
    late = ask_code(client, user)
    time.sleep(1.5)
    assert "expired" in type_code(client, late).content.decode()
    assert not address_is_verified(user=user, channel="sms")
    # a new code in time works
    settings.VERIFY_PHONE_CODE_SECONDS = 600
    assert type_code(client, ask_code(client, user)).status_code == 302
    assert address_is_verified(user=user, channel="sms")
    # bad input is a form error, never a 500
    assert type_code(client, "<script>").status_code == 400
    assert client.post(reverse("verify_addresses"), {"channel": "fax"}).status_code == 400
    # and an account without a number is asked to add one; nothing is sent
    no_phone = customer(email=False, sms=False, phone="")
    client.force_login(no_phone)
    assert "There is no phone number" in client.get(reverse("verify_addresses")).content.decode()
    asked = client.post(reverse("verify_addresses"), {"channel": "sms"})
    assert asked.status_code == 400 and "Add a phone number first" in asked.content.decode()
    assert not Notification.objects.filter(customer=no_phone).exists()


# --- a failed payment: once, by the preferred channel -------------------------------------------


@pytest.mark.django_db
def test_a_failed_payment_is_planned_once_by_the_first_channel_that_can_reach_the_customer(smtp):
    everything = verified(customer(push=True), email=True, phone=True)
    phone_only = verified(customer(push=True), email=False, phone=True)
    nothing_verified = customer(push=False)
    dish = MenuItemFactory()

    def fail(user, *, online: bool):
        order = OrderFactory.create(customer=user, dish=dish)
        order_transition(order_id=order.pk, to="payment_failed", actor_kind=Actor.SYSTEM, reason="Not enough money")
        notifications_plan_order_step(order_id=order.pk, step="payment_failed", watching=False, online=online)
        # (the event delivered again, when another channel would be the one that reaches them)
        notifications_plan_order_step(order_id=order.pk, step="payment_failed", watching=False, online=not online)
        return order

    # then: a page of the site open: the browser only
    order = fail(everything, online=True)
    assert statuses(order=order) == {"push": ("pending", "")}
    # no page open: email, the next preferred
    order = fail(everything, online=False)
    assert statuses(order=order) == {"email": ("pending", "")}
    # email not verified: the text
    order = fail(phone_only, online=False)
    assert statuses(order=order) == {"sms": ("pending", "")}
    # nothing can reach them: one row that says why
    order = fail(nothing_verified, online=False)
    assert statuses(order=order) == {"email": ("skipped", "email address not verified")}


@pytest.mark.django_db(transaction=True)
def test_a_failed_payment_notifies_once_through_the_notifier(smtp, relay, run_consumers, restaurant):
    # given: the notifier running; a customer who chose every channel and verified them all
    for workers in ([notifier_plan, notifier_push], [notifier_email], [notifier_sms]):
        run_consumers(*workers)
    user = verified(customer(push=True), email=True, phone=True)
    order = OrderFactory.create(customer=user, dish=MenuItemFactory(category__restaurant=restaurant))
    # when: its payment fails (as billing moves it), and the step is announced a second time
    order_transition(order_id=order.pk, to="payment_failed", actor_kind=Actor.SYSTEM, reason="Card declined")
    wait_until(lambda: Notification.objects.filter(order=order, status="sent").exists(), what="the notification")
    with transaction.atomic():
        outbox_write(
            event=ORDER_STATUS_CHANGED,
            aggregate=f"order:{order.pk}",
            payload={
                "order_id": order.pk,
                "customer_id": user.pk,
                "restaurant_id": restaurant.pk,
                "status": "payment_failed",
                "from_status": "pending_payment",
                "version": 2,
                "at": "2026-12-02T10:00:00+00:00",
                "reason": "Card declined",
            },
        )
    time.sleep(2)
    # then: one email (no page of theirs was open), no text, no toast
    assert statuses(order=order) == {"email": ("sent", "")}
    assert len(smtp.to(user.email)) == 1 and "payment did not go through" in smtp.to(user.email)[0]["Subject"]
    assert RecordingSms.sent == []
    assert Order.objects.get(pk=order.pk).status == "payment_failed"


# --- providers: permanent and temporary failures ------------------------------------------------


@pytest.mark.django_db
def test_a_number_the_provider_refuses_for_good_is_failed_at_once_without_retries(settings):
    settings.SMS_PROVIDER = "notifications.delivery.LoggingSmsProvider"
    user = verified(customer(email=False, phone="+1 500 555 0001"), email=False, phone=True)
    order = OrderFactory.create(customer=user, paid=True)
    notifications_plan_order_step(order_id=order.pk, step="paid", watching=False)
    (outcome,) = deliver_pending(order=order)
    assert (outcome.status, outcome.attempts) == ("failed", 1)
    assert outcome.reason.startswith("permanent: 21211")


class FakeTwilio(BaseHTTPRequestHandler):
    """Twilio's Messages API as far as the adapter uses it: a number ending in 1 is invalid
    (400, code 21211), one ending in 3 meets an outage (503)."""

    requests: ClassVar[list[tuple[str, str, str]]] = []

    def do_POST(self):
        form = dict(
            pair.split("=", 1) for pair in self.rfile.read(int(self.headers["Content-Length"])).decode().split("&")
        )
        self.requests.append((self.path, self.headers["Authorization"], form["To"]))
        to = form["To"]
        status, body = (
            (400, {"code": 21211, "message": "Invalid 'To' Phone Number"})
            if to.endswith("1")
            else (503, {"code": 20500, "message": "Internal Server Error"})
            if to.endswith("3")
            else (201, {"sid": "SM" + secrets.token_hex(16), "status": "queued"})
        )
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_the_twilio_adapter_tells_a_refused_number_from_an_outage(settings):
    server = HTTPServer(("127.0.0.1", 0), FakeTwilio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.TWILIO_API_URL = f"http://127.0.0.1:{server.server_port}"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC123", "secret"
    try:
        provider = TwilioSmsProvider()
        sid = provider.send(to="+4930100", body="hello", from_="Passline")
        assert sid.startswith("SM")
        path, auth, to = FakeTwilio.requests[-1]
        assert path == "/2010-04-01/Accounts/AC123/Messages.json" and auth.startswith("Basic ") and "4930100" in to
        with pytest.raises(SmsPermanentError, match="21211"):
            provider.send(to="+4930101", body="hello", from_="Passline")
        with pytest.raises(SmsError, match="503"):
            provider.send(to="+4930103", body="hello", from_="Passline")
        settings.TWILIO_API_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens: temporary
        with pytest.raises(SmsError):
            provider.send(to="+4930100", body="hello", from_="Passline")
    finally:
        server.shutdown()


# --- production -----------------------------------------------------------------------------------


def test_production_refuses_to_start_with_the_logging_sms_provider():
    production = {
        "PASSLINE_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "x.example",
        # a real payment provider, so that only the SMS provider is in question
        "PAYMENT_PROVIDER": "tests.security.test_payments.HostedProvider",
        "PAYMENT_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(32),
        "EMAIL_HOST": "smtp.passline.example",
    }
    refused = manage("check", **production, SMS_PROVIDER="notifications.delivery.LoggingSmsProvider")
    assert refused.returncode != 0 and "SMS_PROVIDER" in refused.stderr
    twilio = manage("check", **production, SMS_PROVIDER="notifications.delivery.TwilioSmsProvider")
    assert twilio.returncode != 0 and "TWILIO_ACCOUNT_SID" in twilio.stderr
    # unless this is a demonstration, said explicitly
    demo = manage("check", **production, SMS_PROVIDER="notifications.delivery.LoggingSmsProvider", PASSLINE_DEMO="1")
    assert demo.returncode == 0, demo.stderr
