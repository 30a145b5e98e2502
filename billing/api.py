"""The wallet's router of the JSON API: the balance and topping it up, through a payment
intent the customer confirms on the provider's page (any provider) or with a test card number
(the simulated provider only).

Thin views: parse (ninja and ``billing.api_schemas``), call one service or selector, serialize.
The domain errors of ``billing.exceptions`` leave in the error shape through the handlers of
``passline.api``.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from ninja import Router, Status

from billing import selectors
from billing.api_schemas import CardPaymentOut, TopUpIn, TopUpIntentIn, TopUpIntentOut, TopUpOut, WalletOut, wallet_out
from billing.exceptions import CardNumbersNotAccepted, InvalidAmount, InvalidCard, ProviderUnavailable
from billing.models import TopUp
from billing.provider import card_numbers_accepted
from billing.receipt_pdf import receipt_response
from billing.receipts import order_receipt
from billing.services.card_payments import order_card_start
from billing.services.topups import CARD_NUMBERS_REFUSED, top_up_refresh, top_up_start, wallet_top_up
from billing.services.wallets import MAX_MOVEMENT
from ordering.api_schemas import check_id
from ordering.exceptions import InvalidOrder, NotFound
from passline.api_schemas import (
    AUTH_ERRORS,
    BODY_ERRORS,
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_422,
    INVALID_REQUEST,
    REPLAYED_HEADER,
    answers,
    idempotency_key,
    money,
)
from passline.throttles import MONEY

router = Router()

# A plain decimal: digits, an optional point and decimals, an optional sign (so that "-5"
# is told it must be more than zero). money() then applies the rules on the value.
AMOUNT_TEXT = re.compile(r"-?\d{1,20}(\.\d{1,20})?")


def _amount_text(value: object) -> str:
    """The amount exactly as the contract has it: a decimal string, never a JSON number."""
    if not isinstance(value, str):
        raise InvalidAmount('Send the amount as a decimal string such as "20.00", not as a JSON number.')
    if not AMOUNT_TEXT.fullmatch(value):
        raise InvalidAmount(f'{value[:40]!r} is not an amount: send a decimal string such as "20.00".')
    return value


def _card_text(value: object) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidCard("Send the card number as a string of 12 to 19 digits.")
    return value


DAILY_LIMIT_422 = (
    "`top_up_daily_limit`: the amount would take today's top-ups (credited to the wallet since local "
    "midnight, or started since then and still waiting on the provider) over "
    f"{settings.TOP_UP_DAILY_LIMIT:,.2f}; `field` is `amount`, `details` has `limit` and "
    "`remaining` (decimal strings); nothing was recorded or charged"
)
PROVIDER_UNAVAILABLE_503 = (
    "`provider_unavailable`: the payment provider is failing and Passline stopped calling it for a "
    "while (its circuit breaker is open); nothing was recorded or charged. Retry after `Retry-After` "
    "seconds (with the same `Idempotency-Key`)."
)


def _unavailable(error: ProviderUnavailable) -> JsonResponse:
    """The contract's error shape, 503 with Retry-After."""
    response = JsonResponse({"error": {"code": error.code, "message": error.message}}, status=503)
    response["Retry-After"] = str(error.retry_after)
    return response


def _idempotency_key(request: HttpRequest) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 1 <= len(key) <= 255:
        raise InvalidOrder("The Idempotency-Key must be 1 to 255 characters.", code="invalid_idempotency_key")
    return key


@router.get("/wallet", **answers({200: WalletOut}, AUTH_ERRORS), tags=["wallet"], summary="My wallet's balance")
def wallet(request: HttpRequest) -> dict[str, Any]:
    return wallet_out(selectors.wallet_summary(user=request.auth))  # type: ignore[attr-defined]


@router.post(
    "/wallet/top-up",
    **answers(
        {200: TopUpOut},
        {
            **AUTH_ERRORS,
            **BODY_ERRORS,
            402: "`card_declined`: the card was declined; nothing changed.",
            409: "`idempotency_conflict`: the `Idempotency-Key` was used for a different top-up.",
            503: PROVIDER_UNAVAILABLE_503,
            422: f"{INVALID_REQUEST} `card_numbers_not_accepted`: a real payment provider is configured, which takes "
            "card numbers on its own page only (use `POST /wallet/top-ups`); `invalid_amount`: an amount that is not a "
            f"decimal string (a JSON number), is 0 or less, has more than two decimals or is over {MAX_MOVEMENT:,.2f}; "
            f"`invalid_card`: a card number that is not 12 to 19 digits or fails the Luhn check; {DAILY_LIMIT_422}; "
            f"{IDEMPOTENCY_KEY_422}",
        },
        parameters=[idempotency_key("top-up")],
    ),
    tags=["wallet"],
    summary="Top up my wallet with a test card (simulated provider only)",
    # Money moves: per account and per address, shared with the site's top-up form.
    throttle=MONEY,
    description="Only while the simulated payment provider is configured (development, tests, demo): with a "
    "real provider Passline takes no card numbers, and this answers 422 `card_numbers_not_accepted` to any "
    "request; use `POST /wallet/top-ups`. "
    "Charges the card and credits the wallet; answers with the new balance. "
    "402 `card_declined` when the card is declined (nothing changes). 422 `invalid_amount` for an amount "
    "that is not a decimal string, is 0 or less, has more than two decimals or is over 10000.00; 422 "
    "`invalid_card` for a card number that is not 12 to 19 digits or fails the Luhn check; 422 "
    "`top_up_daily_limit` when the day's top-ups would go over the daily limit; 422 "
    "`invalid_idempotency_key`. 503 `provider_unavailable` (with `Retry-After`) while the provider is failing: "
    "nothing was charged. Send an `Idempotency-Key` header to retry safely: a retry with the same body "
    "answers as the first request did (200 with the balance as it is now and `Idempotent-Replayed: true`, or "
    "402 again) and charges nothing; a different body under the same key is 409 `idempotency_conflict`.",
)
def wallet_top_up_view(request: HttpRequest, payload: TopUpIn, response: HttpResponse) -> dict[str, Any] | HttpResponse:
    user = request.auth  # type: ignore[attr-defined]
    if not card_numbers_accepted():
        raise CardNumbersNotAccepted(CARD_NUMBERS_REFUSED)
    amount, card_number = _amount_text(payload.amount), _card_text(payload.card_number)
    key = _idempotency_key(request)
    # Seen before the call: a replay. (A concurrent first use is answered the same way but
    # without the header; the service does not say which of the two it was.)
    replayed = key is not None and selectors.top_up_by_key(user=user, idempotency_key=key) is not None
    try:
        top_up = wallet_top_up(user=user, amount=amount, card_number=card_number, idempotency_key=key)
    except ProviderUnavailable as error:
        return _unavailable(error)
    if replayed:
        response[REPLAYED_HEADER] = "true"
    entry = selectors.top_up_entry(top_up=top_up)
    return {
        **wallet_out(selectors.wallet_summary(user=user)),
        "top_up_id": top_up.pk,
        "ledger_entry_id": entry.pk if entry is not None else None,
        "amount": money(top_up.amount),
        "card_last4": top_up.card_last4,
    }


# --- top-ups through a payment intent -------------------------------------------------


def _return_url(top_up_id: int) -> str:
    """Where the provider sends the customer's browser back: the site's wallet page."""
    return settings.SITE_URL.rstrip("/") + reverse("wallet") + f"?top_up={top_up_id}"


def _intent_out(user: User, top_up: TopUp) -> dict[str, Any]:
    entry = selectors.top_up_entry(top_up=top_up) if top_up.status == TopUp.Status.SUCCEEDED else None
    # The provider's page stays open while the top-up is not paid (a declined card may be
    # replaced by another); it is there once the billing worker has made the intent.
    open_intent = top_up.status != TopUp.Status.SUCCEEDED and bool(top_up.confirmation_url)
    return {
        "top_up_id": top_up.pk,
        "status": top_up.status,
        "amount": money(top_up.amount),
        "currency": top_up.currency,
        "intent_id": top_up.provider_intent_id,
        "confirmation_url": top_up.confirmation_url if open_intent else None,
        "client_secret": top_up.client_secret if open_intent else None,
        "decline_reason": top_up.decline_reason,
        "ledger_entry_id": entry.pk if entry is not None else None,
        "balance": money(selectors.wallet_summary(user=user).balance),
    }


@router.post(
    "/wallet/top-ups",
    **answers(
        {202: TopUpIntentOut},
        {
            **AUTH_ERRORS,
            **BODY_ERRORS,
            409: "`idempotency_conflict`: the `Idempotency-Key` was used for a different top-up.",
            503: PROVIDER_UNAVAILABLE_503,
            422: f"{INVALID_REQUEST} `invalid_amount`: an amount that is not a decimal string (a JSON number), is 0 "
            f"or less, has more than two decimals or is over {MAX_MOVEMENT:,.2f}; {DAILY_LIMIT_422}; {IDEMPOTENCY_KEY_422}",
        },
        parameters=[idempotency_key("top-up")],
    ),
    tags=["wallet"],
    summary="Start a top-up: a payment intent the customer confirms on the provider's page",
    # Money moves: per account and per address, shared with the site's top-up form.
    throttle=MONEY,
    description="Records a `pending` top-up and answers 202 at once: Passline asks the payment provider for "
    "the intent in the background. Poll `GET /wallet/top-ups/{top_up_id}` (every second or two) until it "
    "carries `confirmation_url`, and open that in the customer's browser: the card is entered there, on the "
    "provider's page, never sent to Passline. The provider tells Passline the outcome through its signed "
    "webhook, and the wallet is credited once. If the provider cannot be reached for several minutes the "
    "top-up becomes `declined` (nothing charged) with a `decline_reason` saying so. 503 "
    "`provider_unavailable` (with `Retry-After`, nothing recorded) while the provider is failing. 422 "
    "`top_up_daily_limit` (nothing recorded) when the day's top-ups would go over the daily limit. Send an "
    "`Idempotency-Key` header to retry safely: a retry with the same amount answers 202 with the first "
    "top-up as it stands and `Idempotent-Replayed: true`; another amount under the same key is 409 "
    "`idempotency_conflict`.",
)
def wallet_top_up_intent(
    request: HttpRequest, payload: TopUpIntentIn, response: HttpResponse
) -> Status[dict[str, Any]] | HttpResponse:
    user = request.auth  # type: ignore[attr-defined]
    amount = _amount_text(payload.amount)
    key = _idempotency_key(request)
    replayed = key is not None and selectors.top_up_by_key(user=user, idempotency_key=key) is not None
    try:
        top_up = top_up_start(user=user, amount=amount, idempotency_key=key, return_url=_return_url)
    except ProviderUnavailable as error:
        return _unavailable(error)
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return Status(202, _intent_out(user, top_up))


@router.get(
    "/wallet/top-ups/{top_up_id}",
    **answers({200: TopUpIntentOut}, {**AUTH_ERRORS, 404: "`not_found`: no such top-up of yours."}),
    tags=["wallet"],
    summary="A top-up of mine and how it stands",
    description="`pending`, `succeeded` (with the ledger entry that credited the wallet) or `declined`. "
    "`confirmation_url` is null until Passline has the provider's intent (poll until it is there). A pending "
    "top-up with an intent is checked with the provider on the way (for when its webhook is late), unless "
    "the provider is failing: then it answers with the top-up as it stands. Another customer's top-up "
    "is 404, exactly like one that does not exist.",
)
def wallet_top_up_status(request: HttpRequest, top_up_id: int) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    top_up = selectors.top_up_of(user=user, top_up_id=top_up_id)
    if top_up is None:
        raise NotFound("No such top-up.")
    return _intent_out(user, top_up_refresh(top_up=top_up))


@router.post(
    "/orders/{int:order_id}/card-payment",
    **answers(
        {200: CardPaymentOut},
        {
            **AUTH_ERRORS,
            404: "`not_found`: no such order of yours.",
            422: "`not_a_card_order`: the order is paid from the wallet; `not_payable`: it no longer waits for "
            "payment.",
            503: PROVIDER_UNAVAILABLE_503,
        },
    ),
    tags=["orders"],
    summary="Pay a card order: the provider's page to confirm it on",
    description="For an order placed with `payment_method: card` while it is `pending_payment`: the payment "
    "intent for exactly its total (the same one however often this is called). Open `confirmation_url` in the "
    "customer's browser; the provider's signed webhook marks the order `paid`, or `payment_failed` when the "
    "card is declined. A card order never touches the wallet, except that money the card paid for an order "
    "no longer payable (cancelled or failed meanwhile) is refunded to the wallet.",
)
def order_card_payment(request: HttpRequest, order_id: int) -> dict[str, Any] | HttpResponse:
    check_id(order_id)
    user = request.auth  # type: ignore[attr-defined]
    try:
        intent = order_card_start(order_id=order_id, customer_id=user.pk, return_url=_order_return_url(order_id))
    except ProviderUnavailable as error:
        return _unavailable(error)
    return {
        "order_id": order_id,
        "intent_id": intent.id,
        "confirmation_url": intent.confirmation_url,
        "amount": money(intent.amount),
        "currency": intent.currency,
    }


def _order_return_url(order_id: int) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("order_detail", args=[order_id])


def _pdf_answers() -> dict[str, Any]:
    spec = answers(
        {200: None},
        {**AUTH_ERRORS, 404: "`not_found`: no such order of yours (or of your restaurant), or one never paid."},
    )
    spec["openapi_extra"]["responses"][200] = {
        "description": "The receipt as a PDF, sent as an attachment.",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
    return spec


@router.get(
    "/orders/{order_id}/receipt.pdf",
    **_pdf_answers(),
    tags=["orders"],
    summary="The receipt of a paid order, as a PDF",
    description="The order's customer or staff of its restaurant: its lines with their VAT rates, the VAT by "
    "rate, and how and when it was paid. An order that was never paid has no receipt (404).",
)
def order_receipt_pdf(request: HttpRequest, order_id: int) -> HttpResponse:
    check_id(order_id)
    receipt = order_receipt(user=request.auth, order_id=order_id)  # type: ignore[attr-defined]
    if not receipt.paid:
        raise NotFound("This order was never paid, so it has no receipt.")
    return receipt_response(receipt)
