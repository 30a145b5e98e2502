"""Circuit breakers on the calls that leave Passline, against a payment provider (and an SMS
provider) that time out, fail and recover; the breakers' state in the real Redis.

The breaker opens after BREAKER_FAIL_MAX consecutive failures and then fails fast without
reaching the provider; half-opens after BREAKER_RESET_TIMEOUT; closes on a trial's success.
While it is open the wallet page and the API say card payments are unavailable; a top-up started
while the provider is slow completes once it is back, with one intent and one credit; and the
state is shared by every process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from prometheus_client import REGISTRY

from billing.models import LedgerEntry, SimulatedIntent, TopUp, Wallet
from billing.provider import Charge, PaymentIntent, ProviderError, SimulatedProvider
from billing.services.topups import UNREACHABLE_REASON, top_up_prepare, top_up_start
from notifications.delivery import SmsError, SmsPermanentError, send_sms
from notifications.models import Notification
from ordering import services
from passline import breakers
from passline.breakers import BreakerOpen
from tests.support import process_env, wait_until

pytestmark = pytest.mark.django_db
JSON = "application/json"
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
UNAVAILABLE = "Card payments are unavailable right now; your wallet still works"


class FlakyProvider(SimulatedProvider):
    """The simulated provider behind a switch: ``ok``; ``timeout`` (waits out the call's timeout,
    then the client gives up); ``error`` (a 503); ``lost`` (makes the intent, then the answer is
    lost to a timeout, and from then on it times out). Counts the calls that reached it."""

    mode: ClassVar[str] = "ok"
    calls: ClassVar[list[str]] = []
    lock = threading.Lock()

    @classmethod
    def set(cls, mode: str) -> None:
        cls.mode = mode

    def _reach(self, operation: str) -> str:
        with self.lock:
            self.calls.append(operation)
        if self.mode == "timeout":
            time.sleep(settings.PAYMENT_PROVIDER_TIMEOUT)
            raise TimeoutError(f"{operation}: the provider did not answer in {settings.PAYMENT_PROVIDER_TIMEOUT} s")
        if self.mode == "error":
            raise ProviderError(f"{operation}: 503 Service Unavailable")
        return self.mode

    def create_intent(
        self, *, amount: Decimal, currency: str, idempotency_key: str, metadata: Mapping[str, str], return_url: str
    ) -> PaymentIntent:
        mode = self._reach("create_intent")
        intent = super().create_intent(
            amount=amount, currency=currency, idempotency_key=idempotency_key, metadata=metadata, return_url=return_url
        )
        if mode == "lost":
            FlakyProvider.set("timeout")  # and then it stops answering at all
            raise TimeoutError("create_intent: the answer was lost")
        return intent

    def retrieve_intent(self, intent_id: str) -> PaymentIntent:
        self._reach("retrieve_intent")
        return super().retrieve_intent(intent_id)

    def charge(self, *, card_number: str, amount: Decimal, currency: str, idempotency_key: str) -> Charge:
        self._reach("charge")
        return super().charge(
            card_number=card_number, amount=amount, currency=currency, idempotency_key=idempotency_key
        )


class FlakySms:
    """An SMS provider that is down (a 503 from its API) until told otherwise."""

    down: ClassVar[bool] = True
    sent: ClassVar[list[str]] = []

    def send(self, *, to: str, body: str, from_: str) -> str:
        if self.down:
            raise SmsError("twilio 503: service unavailable")
        self.sent.append(to)
        return f"SM{len(self.sent)}"


@pytest.fixture
def flaky(settings):
    # The URLs are loaded (once per run) with the simulated provider's page, which serves this
    # provider's intents too.
    reverse("simulated_provider_confirm", args=["pi_sim_x"])
    settings.PAYMENT_PROVIDER = f"{__name__}.FlakyProvider"
    settings.PAYMENT_PROVIDER_TIMEOUT = 0.2
    settings.BREAKER_FAIL_MAX = 3
    settings.BREAKER_RESET_TIMEOUT = 3
    FlakyProvider.set("ok")
    FlakyProvider.calls.clear()
    return FlakyProvider


def bearer(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=user)}"})


def return_url(top_up_id: int) -> str:
    return f"http://testserver/wallet/?top_up={top_up_id}"


def pending(user, amount: str = "10.00") -> TopUp:
    return top_up_start(user=user, amount=amount, idempotency_key=None, return_url=return_url)


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("passline_breaker_open", {"breaker": name})


def failures(reason: str) -> float:
    labels = {"provider": "payment", "operation": "create_intent", "reason": reason}
    return REGISTRY.get_sample_value("passline_provider_call_failures_total", labels) or 0.0


def open_payment_breaker() -> None:
    breakers.breaker(breakers.PAYMENT).open()


# The three states ---------------------------------------------------------------------------


def test_the_breaker_opens_after_n_failures_fails_fast_half_opens_and_closes_on_a_success(flaky, customer):
    top_up = pending(customer)
    timeouts_before, open_before = failures("timeout"), failures("open")

    # when the provider times out three times (BREAKER_FAIL_MAX)
    flaky.set("timeout")
    for _ in range(3):
        with pytest.raises(TimeoutError):
            top_up_prepare(top_up_id=top_up.pk, return_url=return_url(top_up.pk))

    # then the breaker is open: the next calls fail fast and never reach the provider
    assert breakers.state(breakers.PAYMENT) == breakers.OPEN and gauge("payment") == 1
    reached = len(flaky.calls)
    started = time.monotonic()
    for _ in range(5):
        with pytest.raises(BreakerOpen) as refused:
            top_up_prepare(top_up_id=top_up.pk, return_url=return_url(top_up.pk))
    assert time.monotonic() - started < 0.2 * 3  # not even one timeout long
    assert len(flaky.calls) == reached == 3
    assert 0 < refused.value.retry_after <= 3
    assert failures("timeout") - timeouts_before == 3 and failures("open") - open_before == 5

    # when the pause is over: half-open, and a failed trial opens it again for another pause
    wait_until(lambda: breakers.state(breakers.PAYMENT) == breakers.HALF_OPEN, timeout=5, what="half-open")
    flaky.set("error")
    with pytest.raises(ProviderError):
        top_up_prepare(top_up_id=top_up.pk, return_url=return_url(top_up.pk))
    assert breakers.state(breakers.PAYMENT) == breakers.OPEN and len(flaky.calls) == 4

    # when the provider is back and the next pause is over, one trial call closes it
    flaky.set("ok")
    wait_until(lambda: breakers.state(breakers.PAYMENT) == breakers.HALF_OPEN, timeout=5, what="half-open again")
    intent = top_up_prepare(top_up_id=top_up.pk, return_url=return_url(top_up.pk))

    assert intent is not None and breakers.state(breakers.PAYMENT) == breakers.CLOSED and gauge("payment") == 0
    assert breakers.breaker_states() == {"payment": "closed", "sms": "closed", "email": "closed"}
    assert TopUp.objects.get(pk=top_up.pk).confirmation_url == intent.confirmation_url
    assert len(flaky.calls) == 5


def test_failures_must_be_consecutive_and_a_declined_card_is_no_failure(flaky, customer):
    api = bearer(customer)

    # two failures, then declined cards (the provider answering), then two failures again
    flaky.set("error")
    for _ in range(2):
        with pytest.raises(ProviderError):
            top_up_prepare(top_up_id=pending(customer).pk, return_url="http://testserver/wallet/")
    flaky.set("ok")
    declined = [
        api.post("/api/v1/wallet/top-up", {"amount": "5.00", "card_number": DECLINED_CARD}, content_type=JSON)
        for _ in range(4)
    ]
    flaky.set("error")
    for _ in range(2):
        with pytest.raises(ProviderError):
            top_up_prepare(top_up_id=pending(customer).pk, return_url="http://testserver/wallet/")

    assert [answer.status_code for answer in declined] == [402] * 4
    assert breakers.state(breakers.PAYMENT) == breakers.CLOSED


def test_texts_open_the_sms_breaker_on_outages_only_and_wait_while_it_is_open(settings):
    settings.BREAKER_FAIL_MAX = 2
    settings.SMS_PROVIDER = "notifications.delivery.LoggingSmsProvider"
    text = Notification(pk=1, key="k", channel="sms", recipient="+49 30 5550001", body="Hello")

    # numbers the provider refuses (…0001: not valid) are answers, not outages
    for _ in range(3):
        with pytest.raises(SmsPermanentError):
            send_sms(text)
    assert breakers.state(breakers.SMS) == breakers.CLOSED

    # a provider that is down (…0000) opens it; then nothing is sent, the text waits for a retry
    settings.SMS_PROVIDER = f"{__name__}.FlakySms"
    FlakySms.down, FlakySms.sent = True, []
    text.recipient = "+49 30 5551234"
    for _ in range(2):
        with pytest.raises(SmsError):
            send_sms(text)
    FlakySms.down = False
    with pytest.raises(SmsError, match="not sent yet: the sms breaker is open"):
        send_sms(text)

    assert breakers.state(breakers.SMS) == breakers.OPEN and FlakySms.sent == []
    assert gauge("sms") == 1 and breakers.state(breakers.PAYMENT) == breakers.CLOSED


# What users see while it is open --------------------------------------------------------------


def test_while_open_the_wallet_page_says_card_payments_are_unavailable_and_sends_nobody_away(flaky, client, customer):
    client.force_login(customer)
    token = client.get(reverse("wallet")).context["top_up_token"]

    open_payment_breaker()
    page = client.get(reverse("wallet"))
    posted = client.post(reverse("wallet"), {"amount": "10.00", "top_up_token": token})

    html = page.content.decode()
    assert page.status_code == 200 and UNAVAILABLE in html
    assert 'id="top-up-form"' not in html and 'id="wallet-balance"' in html
    assert posted.status_code == 503 and UNAVAILABLE in posted.content.decode()
    assert 0 < int(posted["Retry-After"]) <= 3
    assert not TopUp.objects.exists() and flaky.calls == []


def test_while_open_the_api_answers_503_provider_unavailable_with_retry_after(flaky, customer):
    api = bearer(customer)
    open_payment_breaker()

    intent = api.post("/api/v1/wallet/top-ups", {"amount": "10.00"}, content_type=JSON)
    card = api.post("/api/v1/wallet/top-up", {"amount": "10.00", "card_number": GOOD_CARD}, content_type=JSON)
    wallet = api.get("/api/v1/wallet")

    for answer in (intent, card):
        assert answer.status_code == 503, answer.content
        assert set(answer.json()) == {"error"} and answer.json()["error"]["code"] == "provider_unavailable"
        assert UNAVAILABLE in answer.json()["error"]["message"]
        assert 0 < int(answer["Retry-After"]) <= 3
    assert wallet.status_code == 200 and wallet.json()["balance"] == "0.00"
    assert not TopUp.objects.exists() and flaky.calls == []


def test_a_pending_top_up_is_answered_as_it_stands_while_the_provider_is_down(flaky, customer):
    top_up = pending(customer)
    top_up_prepare(top_up_id=top_up.pk, return_url=return_url(top_up.pk))
    flaky.set("timeout")
    api = bearer(customer)

    answers = [api.get(f"/api/v1/wallet/top-ups/{top_up.pk}") for _ in range(5)]

    assert [answer.status_code for answer in answers] == [200] * 5
    assert {answer.json()["status"] for answer in answers} == {"pending"}
    assert answers[-1].json()["confirmation_url"].startswith("http://testserver/simulated-provider/")
    # three timeouts opened the breaker: the last two asked nobody
    assert flaky.calls.count("retrieve_intent") == 3


# A top-up started while the provider is slow ----------------------------------------------------


@pytest.mark.slow
def test_a_top_up_started_while_the_provider_is_slow_completes_once_it_recovers_charged_once(
    flaky, settings, customer, relay, run_consumers
):
    settings.BREAKER_FAIL_MAX = 2
    settings.BREAKER_RESET_TIMEOUT = 2
    run_consumers("billing.top_ups")
    api = bearer(customer)

    # given a provider that makes the intent but whose answer is lost, then stops answering
    flaky.set("lost")
    started = time.monotonic()
    created = api.post(
        "/api/v1/wallet/top-ups", {"amount": "25.00"}, content_type=JSON, headers={"Idempotency-Key": "a"}
    )
    answered_in = time.monotonic() - started

    # then the API answered at once, and the worker's failures opened the breaker
    assert created.status_code == 202 and answered_in < 1, (created.content, answered_in)
    body = created.json()
    assert body["status"] == "pending" and body["confirmation_url"] is None
    wait_until(lambda: breakers.state(breakers.PAYMENT) == breakers.OPEN, timeout=10, what="the breaker to open")

    # when the provider is back, the worker's next attempt after the pause gets the intent
    flaky.set("ok")
    url = f"/api/v1/wallet/top-ups/{body['top_up_id']}"
    ready = wait_until(lambda: api.get(url).json()["confirmation_url"], timeout=15, what="the confirmation URL")
    again = api.post("/api/v1/wallet/top-ups", {"amount": "25.00"}, content_type=JSON, headers={"Idempotency-Key": "a"})
    Client().post(ready, {"card_number": GOOD_CARD})

    # then it is paid and credited once: one top-up, one intent at the provider, one ledger entry
    done = api.get(url).json()
    assert done["status"] == "succeeded" and done["balance"] == "25.00" and done["confirmation_url"] is None
    assert again.status_code == 202 and again.json()["top_up_id"] == body["top_up_id"]
    assert TopUp.objects.filter(user=customer).count() == 1
    assert SimulatedIntent.objects.count() == 1
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1
    assert Wallet.objects.get(user=customer).balance == Decimal("25.00")
    assert breakers.state(breakers.PAYMENT) == breakers.CLOSED
    assert flaky.calls.count("create_intent") >= 3  # the lost answer, a timeout, the success


@pytest.mark.slow
def test_a_top_up_whose_provider_never_answers_is_declined_and_the_page_says_so(
    flaky, settings, client, customer, relay, run_consumers
):
    run_consumers("billing.top_ups")
    client.force_login(customer)
    flaky.set("error")
    token = client.get(reverse("wallet")).context["top_up_token"]

    posted = client.post(reverse("wallet"), {"amount": "7.00", "top_up_token": token})
    waiting = client.get(posted["Location"])
    top_up = TopUp.objects.get(user=customer)
    status_url = reverse("wallet_top_up_status", args=[top_up.pk])
    wait_until(
        lambda: TopUp.objects.get(pk=top_up.pk).status == TopUp.Status.DECLINED,
        timeout=sum(settings.TOP_UP_RETRY_DELAYS) + 15,
        what="the worker to give up",
    )
    status = client.get(status_url).json()
    shown = client.get(posted["Location"], follow=True)

    assert waiting.status_code == 200 and "Preparing your payment" in waiting.content.decode()
    assert status["status"] == "declined" and status["redirect"].startswith(reverse("wallet") + "?top_up=")
    assert UNREACHABLE_REASON in shown.content.decode()
    assert TopUp.objects.get(pk=top_up.pk).decline_reason == UNREACHABLE_REASON
    assert not LedgerEntry.objects.exists()


# Shared by every process ------------------------------------------------------------------------

PROBE = """
import django
django.setup()
from passline import breakers
print("state", breakers.state("payment"))
try:
    breakers.guarded("payment", "probe", lambda: print("reached"))
except breakers.BreakerOpen:
    print("failed fast")
"""


def probe(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=process_env(DJANGO_SETTINGS_MODULE="passline.settings", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_breaker_opened_by_one_process_protects_the_others(flaky, customer):
    # given this process saw the provider fail three times
    flaky.set("error")
    top_up = pending(customer)
    for _ in range(3):
        with pytest.raises(ProviderError):
            top_up_prepare(top_up_id=top_up.pk, return_url=return_url(top_up.pk))

    # then another process finds the breaker open and fails fast
    seen = probe(BREAKER_RESET_TIMEOUT="3", BREAKER_FAIL_MAX="3")
    assert "state open" in seen and "failed fast" in seen and "reached" not in seen

    # and once the pause is over, its successful trial call closes the breaker for this one too
    time.sleep(3.1)
    seen = probe(BREAKER_RESET_TIMEOUT="3", BREAKER_FAIL_MAX="3")
    assert "state half-open" in seen and "reached" in seen
    assert breakers.state(breakers.PAYMENT) == breakers.CLOSED
