"""The wallet page: the balance, a top-up form and the ledger. Thin: parse the form, call
the top-up service, render."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from billing import selectors
from billing.exceptions import BillingError, CardDeclined, InvalidAmount, InvalidCard, KeyReused
from billing.forms import TopUpForm, new_form_token
from billing.services.topups import wallet_top_up
from billing.services.wallets import money
from ordering.templatetags.site_tags import money as format_money
from passline.http import AuthenticatedHttpRequest

HISTORY_LIMIT = 50


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


@login_required
@require_http_methods(["GET", "POST"])
def wallet(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The hidden per-render token is the top-up's idempotency key, so a form submitted twice
    charges the card and credits the wallet once."""
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    status = 200
    if request.method == "POST":
        form = TopUpForm(request.POST)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            key = f"site-top-up:{data['top_up_token']}"
            replayed = selectors.top_up_by_key(user=request.user, idempotency_key=key) is not None
            try:
                top_up = wallet_top_up(
                    user=request.user, amount=data["amount"], card_number=data["card_number"], idempotency_key=key
                )
            except CardDeclined:
                status = 402
                form.add_error(
                    None, "Your card was declined. Nothing was charged and your balance is unchanged; try another card."
                )
                # Do not show the declined number again.
                data_shown = request.POST.copy()
                data_shown["card_number"] = ""
                form.data = data_shown
            except InvalidCard as error:
                form.add_error("card_number", error.message)
            except InvalidAmount as error:
                form.add_error("amount", error.message)
            except KeyReused:
                status = 409
                form.add_error(None, "This form was already used for another top-up. Check your balance and try again.")
            except BillingError as error:
                status = 409
                form.add_error(None, error.message)
            else:
                if not replayed:
                    messages.success(
                        request,
                        f"Added {format_money(top_up.amount)} to your wallet (card ending {top_up.card_last4}).",
                    )
                return redirect(next_url or "wallet")
    else:
        form = TopUpForm(initial={"amount": _suggested_amount(request.GET.get("amount"))})

    context = {
        "form": form,
        "summary": selectors.wallet_summary(user=request.user),
        "entries": selectors.ledger_entries(user=request.user, limit=HISTORY_LIMIT),
        "history_limit": HISTORY_LIMIT,
        # A fresh token on every render: a form shown again after an error is a new attempt.
        "top_up_token": new_form_token(),
        "next": next_url,
    }
    return render(request, "billing/wallet.html", context, status=status)
