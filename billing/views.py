"""The wallet page (the balance, a top-up form and the ledger), the payment provider's webhook,
and the simulated provider's confirmation page. Thin: parse, call a top-up service, render."""

from __future__ import annotations

import logging
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from billing import selectors
from billing.exceptions import (
    BillingError,
    DailyTopUpLimit,
    InvalidAmount,
    InvalidCard,
    KeyReused,
    ProviderUnavailable,
    WebhookRejected,
)
from billing.forms import SimulatedCardForm, TopUpForm, new_form_token
from billing.models import TopUp
from billing.provider import SimulatedProvider, clean_card_number, payment_provider
from billing.services.availability import UNAVAILABLE_MESSAGE, payments_available
from billing.services.card_payments import order_card_start
from billing.services.topups import UNREACHABLE_REASON, top_up_check_daily_limit, top_up_refresh, top_up_start
from billing.services.wallets import money
from billing.services.webhooks import payment_webhook_apply
from ordering.exceptions import NotFound
from ordering.templatetags.site_tags import money as format_money
from passline.breakers import PAYMENT, retry_after
from passline.http import AuthenticatedHttpRequest
from passline.throttles import site_limit

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 50
DECLINED_MESSAGE = "Your card was declined. Nothing was charged and your balance is unchanged; try another card."


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _suggested_amount(raw: str | None) -> Decimal | None:
    """``?amount=`` from the checkout's "top up" link: the shortfall, if it is a valid amount."""
    try:
        return money(raw) if raw else None
    except InvalidAmount:
        return None


def _wallet_url(next_url: str, **query: object) -> str:
    params = {**query, **({"next": next_url} if next_url else {})}
    return reverse("wallet") + (f"?{urlencode(params)}" if params else "")


@login_required
@require_http_methods(["GET", "POST"])
def wallet(request: AuthenticatedHttpRequest) -> HttpResponse:
    """A top-up is recorded as pending and the browser waits (:func:`top_up_wait`) until the
    billing worker has the provider's page, which sends it back here with ``?top_up=<id>``. The hidden per-render token is the top-up's
    idempotency key, so a form submitted twice makes one top-up. An amount over
    ``TOP_UP_CONFIRM_ABOVE`` is first shown back to be confirmed."""
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.method == "GET" and request.GET.get("top_up", "").isdigit():
        return _returned(request, int(request.GET["top_up"]), next_url)
    status = 200
    confirm = None
    if request.method == "POST":
        form = TopUpForm(request.POST)
        status = 400
        # Top-ups per account: the same allowance as the API's (PASSLINE_RATE_LIMITS["money"]).
        limited = site_limit(request, "money", user=request.user) if form.is_valid() else None
        if limited is not None:
            status = 429
            form.add_error(None, limited.message)
        elif form.is_valid():
            data = form.cleaned_data
            try:
                # Before the confirmation step: confirming what is then refused helps nobody.
                top_up_check_daily_limit(user=request.user, amount=data["amount"])
            except DailyTopUpLimit as error:
                form.add_error("amount", error.message)
            else:
                if data["amount"] > settings.TOP_UP_CONFIRM_ABOVE and not data["confirmed"]:
                    # Shown back for a second look (a slip of a zero), with the same token:
                    # confirming makes one top-up, however often it is pressed.
                    confirm = {"amount": data["amount"], "top_up_token": data["top_up_token"]}
                    status = 200
                else:
                    top_up, status = _start(request, form, next_url)
                    if top_up is not None:
                        # The provider's page is not known yet: the billing worker asks for it. The
                        # browser waits on a small page that sends it on once it is.
                        return redirect(_wait_url(top_up.pk, next_url))
    else:
        form = TopUpForm(initial={"amount": _suggested_amount(request.GET.get("amount"))})

    context = {
        "form": form,
        "confirm": confirm,
        "confirm_above": settings.TOP_UP_CONFIRM_ABOVE,
        "summary": selectors.wallet_summary(user=request.user),
        "entries": selectors.ledger_entries(user=request.user, limit=HISTORY_LIMIT),
        "history_limit": HISTORY_LIMIT,
        # A fresh token on every render: a form shown again after an error is a new attempt.
        "top_up_token": new_form_token(),
        "next": next_url,
        # While the payment breaker is open the form says so and sends nobody to the provider.
        "payments_available": payments_available(),
        "unavailable_message": UNAVAILABLE_MESSAGE,
    }
    response = render(request, "billing/wallet.html", context, status=status)
    if status == 503:
        response["Retry-After"] = str(retry_after(PAYMENT) or 30)
    return response


def _start(request: AuthenticatedHttpRequest, form: TopUpForm, next_url: str) -> tuple[TopUp | None, int]:
    """Start the form's top-up; or None and the page's status, the refusal added to the form."""
    data = form.cleaned_data
    try:
        top_up = top_up_start(
            user=request.user,
            amount=data["amount"],
            idempotency_key=f"site-top-up:{data['top_up_token']}",
            return_url=lambda top_up_id: request.build_absolute_uri(_wallet_url(next_url, top_up=top_up_id)),
        )
    except (InvalidAmount, DailyTopUpLimit) as error:
        form.add_error("amount", error.message)
        return None, 400
    except ProviderUnavailable as error:
        form.add_error(None, error.message)
        return None, 503
    except KeyReused:
        form.add_error(None, "This form was already used for another top-up. Check your balance and try again.")
        return None, 409
    except BillingError as error:
        form.add_error(None, error.message)
        return None, 409
    return top_up, 302


def _wait_url(top_up_id: int, next_url: str) -> str:
    url = reverse("wallet_top_up_wait", args=[top_up_id])
    return url + (f"?{urlencode({'next': next_url})}" if next_url else "")


def _next_step(top_up: TopUp, next_url: str) -> str | None:
    """Where the browser waiting on a top-up goes now: the provider's page once the billing
    worker has it, back to the wallet once the top-up is settled; None: keep waiting."""
    if top_up.status == TopUp.Status.PENDING and top_up.confirmation_url:
        return top_up.confirmation_url
    if top_up.status != TopUp.Status.PENDING:
        return _wallet_url(next_url, top_up=top_up.pk)
    return None


@login_required
@require_http_methods(["GET"])
def top_up_wait(request: AuthenticatedHttpRequest, top_up_id: int) -> HttpResponse:
    """The small page a browser waits on while the billing worker asks the provider for the
    top-up's intent: static/js/top-up-wait.js polls :func:`top_up_status` and moves on; without
    JavaScript the page reloads itself, and this view redirects once there is somewhere to go."""
    next_url = _safe_next(request, request.GET.get("next"))
    top_up = selectors.top_up_of(user=request.user, top_up_id=top_up_id)
    if top_up is None:
        raise Http404("No such top-up.")
    step = _next_step(top_up, next_url)
    if step is not None:
        return redirect(step)
    context = {
        "top_up": top_up,
        "next": next_url,
        "status_url": reverse("wallet_top_up_status", args=[top_up.pk])
        + (f"?{urlencode({'next': next_url})}" if next_url else ""),
        "payments_available": payments_available(),
        "unavailable_message": UNAVAILABLE_MESSAGE,
    }
    return render(request, "billing/top_up_wait.html", context)


@login_required
@require_http_methods(["GET"])
def top_up_status(request: AuthenticatedHttpRequest, top_up_id: int) -> JsonResponse:
    """What the waiting page polls: the top-up's status, and ``redirect`` once the browser may go
    on (never a call to the provider: only what the billing worker saved)."""
    next_url = _safe_next(request, request.GET.get("next"))
    top_up = selectors.top_up_of(user=request.user, top_up_id=top_up_id)
    if top_up is None:
        return _error(404, "not_found", "No such top-up.")
    return JsonResponse(
        {
            "top_up_id": top_up.pk,
            "status": top_up.status,
            "redirect": _next_step(top_up, next_url),
            "payments_available": payments_available(),
        }
    )


def _returned(request: AuthenticatedHttpRequest, top_up_id: int, next_url: str) -> HttpResponse:
    """Back from the provider's page: say how the top-up went, then show the plain wallet page
    (a reload says nothing twice)."""
    top_up = selectors.top_up_of(user=request.user, top_up_id=top_up_id)
    if top_up is not None:
        top_up = top_up_refresh(top_up=top_up)
        if top_up.status == TopUp.Status.SUCCEEDED:
            ending = f" (card ending {top_up.card_last4})" if top_up.card_last4 else ""
            messages.success(request, f"Added {format_money(top_up.amount)} to your wallet{ending}.")
            if next_url:  # topped up from the checkout: back to it
                return redirect(next_url)
        elif top_up.status == TopUp.Status.DECLINED and top_up.decline_reason == UNREACHABLE_REASON:
            messages.error(request, UNREACHABLE_REASON)
        elif top_up.status == TopUp.Status.DECLINED:
            messages.error(request, DECLINED_MESSAGE)
        else:
            messages.info(request, "Your payment is not confirmed yet. Your balance goes up as soon as it is.")
    return redirect(_wallet_url(next_url))


@login_required
@require_http_methods(["GET", "POST"])
def order_pay_by_card(request: AuthenticatedHttpRequest, order_id: int) -> HttpResponse:
    """Send the customer to the provider's page for their card order's intent (the checkout
    redirects here; the order page's "Pay by card" button posts here). The provider sends them
    back to the order's page, which turns paid live when the webhook has settled it."""
    order_url = reverse("order_detail", args=[order_id])
    try:
        intent = order_card_start(
            order_id=order_id, customer_id=request.user.pk, return_url=request.build_absolute_uri(order_url)
        )
    except NotFound:
        raise Http404("No such order.") from None
    except BillingError as error:
        messages.error(request, error.message)
        return redirect(order_url)
    return redirect(intent.confirmation_url)


@csrf_exempt  # the provider cannot hold a CSRF token: the signature authenticates the call
def payment_webhook(request: HttpRequest) -> HttpResponse:
    """The payment provider's events. The signature is checked over the raw body before
    anything is read from it; a delivery that fails the check is a 400 and changes nothing."""
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Use POST.")
        response["Allow"] = "POST"
        return response
    provider = payment_provider()
    try:
        outcome = payment_webhook_apply(payload=request.body, signature=request.headers.get(provider.signature_header))
    except WebhookRejected as error:
        logger.warning("payment webhook refused: %s", error.message)
        return _error(400, error.code, error.message)
    return JsonResponse({"received": True, "outcome": outcome})


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


# --- the simulated provider's own page (mounted only while it is configured) ---------------


@require_http_methods(["GET", "POST"])
def simulated_provider_confirm(request: HttpRequest, intent_id: str) -> HttpResponse:
    """The simulated provider's confirmation page: a stand-in for a real provider's hosted
    card field. The card number posted here stays with the provider; Passline hears the
    outcome through the signed webhook, verified exactly as a real provider's."""
    provider = payment_provider()
    if not isinstance(provider, SimulatedProvider):
        raise Http404("The simulated payment provider is not configured.")
    client_secret = request.POST.get("client_secret") or request.GET.get("client_secret") or ""
    intent = provider.find(intent_id, client_secret)
    if intent is None:
        raise Http404("No such payment.")
    status = 200
    form = SimulatedCardForm(request.POST or None)
    if request.method == "POST":
        status = 400
        if intent.status != "requires_payment_method":
            return redirect(intent.return_url)
        if form.is_valid():
            try:
                number = clean_card_number(form.cleaned_data["card_number"])
            except InvalidCard as error:
                form.add_error("card_number", error.message)
            else:
                delivery = provider.confirm(intent.pk, number)
                if delivery is not None:
                    _deliver(*delivery)
                return redirect(intent.return_url)
    context = {"intent": intent, "form": form, "client_secret": client_secret}
    return render(request, "billing/simulated_provider.html", context, status=status)


def _deliver(payload: bytes, signature: str) -> None:
    """The provider's call of Passline's webhook, through the very code the webhook view runs.
    A failure is logged only: the wallet page asks the provider again when the customer is
    back (top_up_refresh), as a real provider's retries would eventually deliver."""
    try:
        payment_webhook_apply(payload=payload, signature=signature)
    except Exception:
        logger.exception("the simulated provider's webhook delivery failed")
