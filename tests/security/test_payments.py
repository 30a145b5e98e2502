"""Payments the way real providers work: the provider's webhook is believed only with a good
signature, credits once however it is delivered, card numbers reach Passline only while the
simulated provider is on, and production refuses that provider unless it is a demo."""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import ClassVar

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from billing.exceptions import WebhookRejected
from billing.models import LedgerEntry, PaymentEvent, TopUp, Wallet
from billing.provider import (
    EVENT_FAILED,
    EVENT_SUCCEEDED,
    SUCCEEDED,
    PaymentIntent,
    SimulatedProvider,
    WebhookEvent,
    parse_event,
    payment_provider,
    sign_payload,
    verify_signature,
)
from billing.services.topups import top_up_prepare, top_up_start
from ordering import services
from tests.factories import prepare_requested_top_ups

pytestmark = pytest.mark.django_db
JSON = "application/json"
HEADER = SimulatedProvider.signature_header
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bearer(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=user)}"})


def started(user, amount: str = "20.00", key: str | None = None) -> PaymentIntent:
    """A pending top-up of ``amount`` and its intent at the simulated provider."""
    top_up = top_up_start(
        user=user, amount=amount, idempotency_key=key, return_url=lambda pk: f"http://testserver/wallet/?top_up={pk}"
    )
    # (the billing worker's part: the provider's intent)
    intent = top_up_prepare(top_up_id=top_up.pk, return_url=f"http://testserver/wallet/?top_up={top_up.pk}")
    assert intent is not None
    return intent


def paid(intent: PaymentIntent) -> PaymentIntent:
    return dataclasses.replace(intent, status=SUCCEEDED, card_last4="4242")


def deliver(payload: bytes, signature: str | None, client: Client | None = None):
    headers = {HEADER: signature} if signature is not None else {}
    return (client or Client()).post(reverse("payment_webhook"), payload, content_type=JSON, headers=headers)


def money_state(user) -> tuple:
    wallet = Wallet.objects.filter(user=user).first()
    return (
        wallet.balance if wallet else None,
        LedgerEntry.objects.filter(wallet__user=user).count(),
        list(TopUp.objects.filter(user=user).values_list("status", flat=True)),
        PaymentEvent.objects.count(),
    )


# The webhook refuses what it cannot verify ------------------------------------------------


def _forged(payload: bytes, signature: str) -> tuple[bytes, str | None]:
    return payload, None


def _garbled(payload: bytes, signature: str) -> tuple[bytes, str | None]:
    return payload, "v1=" + signature.partition("v1=")[2]  # no timestamp


def _other_secret(payload: bytes, signature: str) -> tuple[bytes, str | None]:
    return payload, sign_payload(payload, secret="whsec_someone-else", timestamp=int(time.time()))


def _stale(payload: bytes, signature: str) -> tuple[bytes, str | None]:
    # a captured delivery replayed after the tolerance window (its signature was good)
    old = int(time.time()) - settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS - 5
    return payload, sign_payload(payload, secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=old)


def _future(payload: bytes, signature: str) -> tuple[bytes, str | None]:
    ahead = int(time.time()) + settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS + 5
    return payload, sign_payload(payload, secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=ahead)


def _tampered(payload: bytes, signature: str) -> tuple[bytes, str | None]:
    # the amount raised in a body whose signature was good
    return payload.replace(b'"amount":2000', b'"amount":900000'), signature


def _retimed(payload: bytes, signature: str) -> tuple[bytes, str | None]:
    # a stale delivery given a fresh timestamp but the old signature
    return payload, f"t={int(time.time()) + 1},v1={signature.partition('v1=')[2]}"


@pytest.mark.parametrize(
    "forge",
    [_forged, _garbled, _other_secret, _stale, _future, _tampered, _retimed],
    ids=["missing", "malformed", "wrong secret", "stale", "from the future", "tampered body", "re-timestamped"],
)
def test_a_webhook_that_fails_verification_is_400_and_credits_nothing(customer, forge):
    # given a pending top-up and a good delivery of its success
    intent = started(customer, "20.00")
    payload, signature = SimulatedProvider.signed_event(EVENT_SUCCEEDED, paid(intent))
    assert b'"amount":2000' in payload
    before = money_state(customer)

    # when the delivery is forged, replayed late or altered
    response = deliver(*forge(payload, signature))

    # then it is refused in the error shape and nothing changed
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["code"] == "invalid_signature"
    assert money_state(customer) == before == (None, 0, ["pending"], 0)


def test_a_verified_body_that_is_no_event_is_400(customer):
    payload = b'{"hello": "world"}'
    signature = sign_payload(payload, secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=int(time.time()))

    response = deliver(payload, signature)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_event"
    assert not PaymentEvent.objects.exists()


def test_the_webhook_takes_only_post():
    response = Client().get(reverse("payment_webhook"))

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


# A good webhook credits once ----------------------------------------------------------------


def test_a_good_webhook_credits_once_even_when_delivered_twice(customer):
    intent = started(customer, "20.00")
    payload, signature = SimulatedProvider.signed_event(EVENT_SUCCEEDED, paid(intent))

    first = deliver(payload, signature)
    again = deliver(payload, signature)

    assert first.status_code == again.status_code == 200
    assert first.json()["outcome"] == "credited" and again.json()["outcome"] == "duplicate"
    top_up = TopUp.objects.get(user=customer)
    assert top_up.status == TopUp.Status.SUCCEEDED and top_up.card_last4 == "4242"
    entry = LedgerEntry.objects.get(wallet__user=customer)
    assert entry.amount == Decimal("20.00") and entry.top_up_id == top_up.pk
    assert Wallet.objects.get(user=customer).balance == Decimal("20.00")


def test_another_event_of_the_same_success_credits_nothing_more(customer):
    # the provider may send a second, distinct event about the same intent
    intent = started(customer, "20.00")
    deliver(*SimulatedProvider.signed_event(EVENT_SUCCEEDED, paid(intent)))

    response = deliver(*SimulatedProvider.signed_event(EVENT_SUCCEEDED, paid(intent)))

    assert response.json()["outcome"] == "already credited"
    assert Wallet.objects.get(user=customer).balance == Decimal("20.00")
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_event", [True, False], ids=["one event", "distinct events"])
def test_concurrent_deliveries_credit_once(customer, same_event):
    # given a pending top-up, and its success delivered four times at once
    intent = started(customer, "15.00")
    one = SimulatedProvider.signed_event(EVENT_SUCCEEDED, paid(intent))
    deliveries = [
        one if same_event else SimulatedProvider.signed_event(EVENT_SUCCEEDED, paid(intent)) for _ in range(4)
    ]
    barrier = threading.Barrier(4)

    def send(delivery):
        try:
            client = Client()
            barrier.wait(timeout=10)
            payload, signature = delivery
            return deliver(payload, signature, client=client)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(send, deliveries))

    # then every delivery is acknowledged, and the wallet was credited once
    assert [a.status_code for a in answers] == [200] * 4, [a.content for a in answers]
    assert sorted(a.json()["outcome"] for a in answers).count("credited") == 1
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1
    assert Wallet.objects.get(user=customer).balance == Decimal("15.00")


def test_a_failed_payment_declines_the_top_up_and_a_later_success_credits_it(customer):
    intent = started(customer, "20.00")
    failed = dataclasses.replace(intent, card_last4="0002", last_error="Your card was declined.")

    deliver(*SimulatedProvider.signed_event(EVENT_FAILED, failed))
    declined = TopUp.objects.get(user=customer)
    deliver(*SimulatedProvider.signed_event(EVENT_SUCCEEDED, paid(intent)))

    assert declined.status == TopUp.Status.DECLINED and declined.decline_reason == "Your card was declined."
    assert TopUp.objects.get(user=customer).status == TopUp.Status.SUCCEEDED
    assert Wallet.objects.get(user=customer).balance == Decimal("20.00")


def test_a_signed_event_whose_amount_differs_from_the_top_up_credits_nothing(customer):
    intent = started(customer, "20.00")
    bigger = dataclasses.replace(paid(intent), amount=Decimal("2000.00"))

    response = deliver(*SimulatedProvider.signed_event(EVENT_SUCCEEDED, bigger))

    assert response.status_code == 200 and response.json()["outcome"] == "amount mismatch"
    assert money_state(customer)[:3] == (None, 0, ["pending"])


def test_an_event_about_an_unknown_intent_changes_nothing(customer):
    stranger = PaymentIntent(
        id="pi_sim_unknown",
        amount=Decimal("5.00"),
        currency="EUR",
        status=SUCCEEDED,
        client_secret="",
        confirmation_url="",
    )

    response = deliver(*SimulatedProvider.signed_event(EVENT_SUCCEEDED, stranger))

    assert response.status_code == 200 and response.json()["outcome"] == "unknown intent"
    assert not LedgerEntry.objects.exists()


# The browser's flow, end to end ----------------------------------------------------------------


def test_the_browser_tops_up_through_the_providers_page_and_the_webhook(client, customer):
    # given a signed-in customer on the wallet page
    client.force_login(customer)
    page = client.get(reverse("wallet")).content.decode()
    token = page.split('name="top_up_token" value="')[1].split('"')[0]

    # when the form is sent: no card number; the browser waits while the billing worker asks
    # the provider for its page, and is then sent there
    posted = client.post(reverse("wallet"), {"amount": "12.50", "top_up_token": token})
    waiting = client.get(posted["Location"])
    prepare_requested_top_ups()
    start = client.get(posted["Location"])
    confirmation = start["Location"]
    top_up = TopUp.objects.get(user=customer)
    provider_page = client.get(confirmation)
    # and the card is entered there, on the provider's path
    back = client.post(confirmation, {"card_number": "4242 4242 4242 4242"})

    # then the provider's page is its own, and took the card
    assert waiting.status_code == 200 and "Preparing your payment" in waiting.content.decode()
    assert start.status_code == 302 and confirmation.startswith("http://testserver/simulated-provider/intents/")
    assert top_up.status == TopUp.Status.PENDING and top_up.provider_intent_id in confirmation
    assert provider_page.status_code == 200 and 'name="card_number"' in provider_page.content.decode()
    # and the provider called the webhook, which verified the event and credited the wallet
    event = PaymentEvent.objects.get()
    assert event.type == EVENT_SUCCEEDED and event.outcome == "credited" and event.top_up_id == top_up.pk
    assert Wallet.objects.get(user=customer).balance == Decimal("12.50")
    # and sent the browser back to the wallet, which says so once
    assert back.status_code == 302 and back["Location"] == f"http://testserver/wallet/?top_up={top_up.pk}"
    shown = client.get(back["Location"], follow=True)
    assert "Added €12.50 to your wallet (card ending 4242)" in shown.content.decode()
    assert "Added €12.50" not in client.get(reverse("wallet")).content.decode()
    # and Passline kept no card number, only its last four digits
    stored = TopUp.objects.filter(user=customer).values().get()
    assert not any("4242424242424242" in str(value) for value in stored.values())


def test_the_providers_page_needs_the_intents_client_secret(client, customer):
    intent = started(customer)
    bare = intent.confirmation_url.split("?")[0]

    assert client.get(bare).status_code == 404
    assert client.get(bare + "?client_secret=secret_guess").status_code == 404
    assert client.post(bare, {"card_number": GOOD_CARD, "client_secret": "secret_guess"}).status_code == 404
    assert TopUp.objects.get(user=customer).status == TopUp.Status.PENDING


def test_a_lost_webhook_is_made_up_for_by_asking_the_provider_once(customer):
    # given a payment the provider took, whose webhook never arrived
    intent = started(customer, "8.00")
    delivery = SimulatedProvider().confirm(intent.id, GOOD_CARD)
    assert delivery is not None
    payload, signature = delivery
    client = bearer(customer)
    top_up = TopUp.objects.get(user=customer)

    # when the client asks how the top-up stands, twice, and then the webhook arrives late
    first = client.get(f"/api/v1/wallet/top-ups/{top_up.pk}")
    second = client.get(f"/api/v1/wallet/top-ups/{top_up.pk}")
    late = deliver(payload, signature)

    # then it was credited once
    assert first.json()["status"] == second.json()["status"] == "succeeded"
    assert first.json()["ledger_entry_id"] is not None and first.json()["confirmation_url"] is None
    assert late.json()["outcome"] == "already credited"
    assert Wallet.objects.get(user=customer).balance == Decimal("8.00")
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1


# The API's intent flow --------------------------------------------------------------------


def start_api(client: Client, amount: str, key: str):
    return client.post(
        "/api/v1/wallet/top-ups", {"amount": amount}, content_type=JSON, headers={"Idempotency-Key": key}
    )


def test_the_api_starts_a_top_up_as_an_intent_and_reports_it(customer, other_customer):
    client = bearer(customer)

    # when a client starts a top-up, polls it, retries it, and misuses its key
    created = start_api(client, "30.00", "k1")
    accepted = created.json()
    prepare_requested_top_ups()  # (the billing worker's part: the provider's intent)
    body = client.get(f"/api/v1/wallet/top-ups/{accepted['top_up_id']}").json()
    replayed = start_api(client, "30.00", "k1")
    conflict = start_api(client, "31.00", "k1")

    # then one pending top-up, accepted at once; its card is entered at the provider's page
    assert created.status_code == 202, created.content
    assert accepted["status"] == "pending" and accepted["confirmation_url"] is None
    assert body["status"] == "pending" and body["amount"] == "30.00" and body["balance"] == "0.00"
    assert "/simulated-provider/intents/" in body["confirmation_url"] and body["client_secret"]
    assert replayed.status_code == 202 and replayed["Idempotent-Replayed"] == "true"
    assert replayed.json()["top_up_id"] == body["top_up_id"]
    assert replayed.json()["confirmation_url"] == body["confirmation_url"]
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"
    assert TopUp.objects.filter(user=customer).count() == 1

    # and once the customer paid on that page, the top-up reads succeeded; nobody else may read it
    Client().post(body["confirmation_url"], {"card_number": GOOD_CARD})
    status = client.get(f"/api/v1/wallet/top-ups/{body['top_up_id']}").json()
    assert status["status"] == "succeeded" and status["balance"] == "30.00"
    assert status["ledger_entry_id"] == LedgerEntry.objects.get(wallet__user=customer).pk
    theirs = bearer(other_customer).get(f"/api/v1/wallet/top-ups/{body['top_up_id']}")
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"


def test_idempotency_keys_differing_only_in_case_are_two_top_ups(customer):
    client = bearer(customer)

    lower = start_api(client, "5.00", "abc")
    upper = start_api(client, "6.00", "ABC")
    body = {"amount": "7.00", "card_number": GOOD_CARD}
    card = client.post("/api/v1/wallet/top-up", body, content_type=JSON, headers={"Idempotency-Key": "aBc"})

    assert lower.status_code == upper.status_code == 202
    assert card.status_code == 200
    assert "Idempotent-Replayed" not in upper and "Idempotent-Replayed" not in card
    assert lower.json()["top_up_id"] != upper.json()["top_up_id"]
    assert sorted(
        str(key) for key in TopUp.objects.filter(user=customer).values_list("idempotency_key", flat=True)
    ) == [
        "ABC",
        "aBc",
        "abc",
    ]


def test_event_ids_differing_only_in_case_are_two_events(customer):
    PaymentEvent.objects.create(provider_event_id="evt_abc", type=EVENT_SUCCEEDED)
    PaymentEvent.objects.create(provider_event_id="EVT_ABC", type=EVENT_SUCCEEDED)

    assert PaymentEvent.objects.count() == 2


# A real provider takes no card numbers -------------------------------------------------------

HOSTED_SECRET = "whsec_hosted-provider-test-secret-0123456789"


class HostedProvider:
    """What an adapter of a real provider offers: intents confirmed on the provider's own
    site, signed webhooks, and no way to charge a card number. (The real provider's servers
    are out of reach of a test; this keeps its intents in memory.)"""

    signature_header = "Hosted-Signature"
    intents: ClassVar[dict[str, PaymentIntent]] = {}

    def create_intent(
        self, *, amount: Decimal, currency: str, idempotency_key: str, metadata: Mapping[str, str], return_url: str
    ) -> PaymentIntent:
        intent_id = f"pi_hosted_{idempotency_key}"
        self.intents.setdefault(
            intent_id,
            PaymentIntent(
                id=intent_id,
                amount=amount,
                currency=currency,
                status="requires_payment_method",
                client_secret=f"{intent_id}_secret",
                confirmation_url=f"https://pay.provider.example/confirm/{intent_id}",
                metadata=dict(metadata),
            ),
        )
        return self.intents[intent_id]

    def retrieve_intent(self, intent_id: str) -> PaymentIntent:
        return self.intents[intent_id]

    def construct_event(self, *, payload: bytes, signature_header: str | None) -> WebhookEvent:
        verify_signature(payload, signature_header, secret=HOSTED_SECRET, tolerance=300)
        return parse_event(payload)


hosted_provider = override_settings(PAYMENT_PROVIDER=f"{__name__}.HostedProvider")


@hosted_provider
@pytest.mark.parametrize(
    "body",
    [
        {"amount": "20.00", "card_number": GOOD_CARD},
        {"amount": "20.00", "card_number": DECLINED_CARD},
        {"amount": 5, "card_number": "1234"},
    ],
)
def test_with_a_real_provider_the_api_refuses_card_numbers(customer, body):
    response = bearer(customer).post("/api/v1/wallet/top-up", body, content_type=JSON)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "card_numbers_not_accepted"
    assert "/api/v1/wallet/top-ups" in response.json()["error"]["message"]
    assert not TopUp.objects.exists() and not LedgerEntry.objects.exists()


@hosted_provider
def test_with_a_real_provider_top_ups_go_to_its_page_and_its_signed_webhook(client, customer):
    # given
    client.force_login(customer)
    token = client.get(reverse("wallet")).content.decode().split('name="top_up_token" value="')[1].split('"')[0]

    # when the wallet's form is sent, and the provider reports the payment with its own secret
    posted = client.post(reverse("wallet"), {"amount": "9.00", "top_up_token": token})
    prepare_requested_top_ups()
    start = client.get(posted["Location"])
    top_up = TopUp.objects.get(user=customer)
    intent = paid(HostedProvider.intents[str(top_up.provider_intent_id)])
    payload = SimulatedProvider.signed_event(EVENT_SUCCEEDED, intent)[0]
    now = int(time.time())
    signed_by_us = sign_payload(payload, secret=settings.PAYMENT_WEBHOOK_SECRET, timestamp=now)
    signed_by_them = sign_payload(payload, secret=HOSTED_SECRET, timestamp=now)
    hook = reverse("payment_webhook")
    wrong = Client().post(hook, payload, content_type=JSON, headers={"Hosted-Signature": signed_by_us})
    right = Client().post(hook, payload, content_type=JSON, headers={"Hosted-Signature": signed_by_them})

    # then the browser went to the provider's site, the simulated provider's page is gone, and
    # only the provider's own signature credited the wallet
    assert start.status_code == 302 and start["Location"].startswith("https://pay.provider.example/confirm/")
    simulated = client.get(reverse("simulated_provider_confirm", args=["pi_sim_x"]) + "?client_secret=x")
    assert simulated.status_code == 404
    assert wrong.status_code == 400
    assert right.status_code == 200 and right.json()["outcome"] == "credited"
    assert Wallet.objects.get(user=customer).balance == Decimal("9.00")


# Production refuses the simulated provider ---------------------------------------------------


def load_settings(**overrides: str) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter, in production, with ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMENT_", "PASSLINE_"))}
    env.update(
        PASSLINE_ENV="production",
        DJANGO_SETTINGS_MODULE="passline.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="passline.example",
        PAYMENT_WEBHOOK_SECRET="whsec_" + secrets.token_urlsafe(32),
        SMS_PROVIDER="",  # no texts: production would refuse the logging SMS provider first
        EMAIL_HOST="smtp.passline.example",  # and emails printed to the log
    )
    env.update(overrides)
    env = {k: v for k, v in env.items() if v != "<unset>"}
    code = "from django.conf import settings; print(settings.PAYMENT_PROVIDER)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("demo", ["<unset>", "0", "", "no"])
def test_production_refuses_the_simulated_provider_unless_it_is_a_demo(demo):
    result = load_settings(PASSLINE_DEMO=demo)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "PASSLINE_DEMO=1" in result.stderr


def test_production_runs_the_simulated_provider_when_a_demo_is_asked_for():
    result = load_settings(PASSLINE_DEMO="1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "billing.provider.SimulatedProvider"


def test_production_takes_a_real_provider_and_requires_its_webhook_secret():
    real = load_settings(PAYMENT_PROVIDER=f"{__name__}.HostedProvider")
    no_secret = load_settings(PAYMENT_PROVIDER=f"{__name__}.HostedProvider", PAYMENT_WEBHOOK_SECRET="<unset>")
    short = load_settings(PAYMENT_PROVIDER=f"{__name__}.HostedProvider", PAYMENT_WEBHOOK_SECRET="short")

    assert real.returncode == 0, real.stderr
    assert no_secret.returncode != 0 and "PAYMENT_WEBHOOK_SECRET" in no_secret.stderr
    assert short.returncode != 0 and "PAYMENT_WEBHOOK_SECRET" in short.stderr


class RenamedSimulator(SimulatedProvider):
    """The simulated provider under another name."""


def test_the_simulated_provider_under_another_name_is_refused_in_production_too(customer):
    with override_settings(PAYMENT_PROVIDER=f"{__name__}.RenamedSimulator", PRODUCTION=True, PASSLINE_DEMO=False):
        with pytest.raises(ImproperlyConfigured):
            payment_provider()
        response = bearer(customer).post(
            "/api/v1/wallet/top-up", {"amount": "5.00", "card_number": GOOD_CARD}, content_type=JSON
        )
    with override_settings(PAYMENT_PROVIDER=f"{__name__}.RenamedSimulator", PRODUCTION=True, PASSLINE_DEMO=True):
        assert isinstance(payment_provider(), RenamedSimulator)

    # a misconfigured server fails closed: an error, and nothing charged or credited
    assert response.status_code == 500
    assert not TopUp.objects.exists() and not LedgerEntry.objects.exists()


# The signature scheme itself ------------------------------------------------------------------


def test_a_signature_under_any_of_the_listed_secrets_is_accepted():
    # the provider signs with the old and the new secret while a secret is rolled
    payload, now = b'{"id":"evt_1"}', int(time.time())
    old = sign_payload(payload, secret="whsec_old", timestamp=now)
    new = sign_payload(payload, secret="whsec_new", timestamp=now)
    both = f"{old},v1={new.partition('v1=')[2]}"

    verify_signature(payload, both, secret="whsec_new", tolerance=300, now=now)
    verify_signature(payload, old, secret="whsec_old", tolerance=300, now=now + 300)
    with pytest.raises(WebhookRejected):
        verify_signature(payload, old, secret="whsec_old", tolerance=300, now=now + 301)
    with pytest.raises(WebhookRejected):
        verify_signature(payload, f"t={now},t={now},v1=x", secret="whsec_old", tolerance=300, now=now)
