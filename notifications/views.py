"""Verifying an account's email address (a link) and phone number (a texted code)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from notifications.addresses import (
    EMAIL,
    SMS,
    VerificationFailed,
    address_is_verified,
    current_addresses,
    email_token_read,
    email_verify,
    phone_verify,
)
from notifications.forms import PhoneCodeForm, VerifyRequestForm
from notifications.services import VerificationLimited, verification_request
from passline.http import AuthenticatedHttpRequest


@login_required
@require_http_methods(["GET", "POST"])
def verify_addresses(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Which of the account's addresses are verified; a POST asks for a link or a code
    (``channel``) or checks a typed code (``code``)."""
    code_form = PhoneCodeForm()
    status, retry_after = 200, 0
    if request.method == "POST" and "code" in request.POST:
        code_form = PhoneCodeForm(request.POST)
        if code_form.is_valid():
            try:
                phone_verify(user=request.user, code=code_form.cleaned_data["code"])
            except VerificationFailed as error:
                code_form.add_error("code", error.message)
            else:
                messages.success(request, "Your phone number is verified.")
                return redirect("verify_addresses")
        status = 400
    elif request.method == "POST":
        ask = VerifyRequestForm(request.POST)
        status = 400
        if ask.is_valid():
            channel = ask.cleaned_data["channel"]
            try:
                verification_request(user=request.user, channel=channel)
            except VerificationLimited as error:
                messages.error(request, error.message)
                status, retry_after = 429, error.retry_after
            except VerificationFailed as error:
                messages.error(request, error.message)
            else:
                messages.success(
                    request,
                    "We sent you a link: follow it to confirm your address."
                    if channel == EMAIL
                    else "We texted you a code: type it below.",
                )
                return redirect("verify_addresses")
        else:
            messages.error(request, "Choose what to verify.")
    addresses = current_addresses(request.user)
    response = render(
        request,
        "notifications/verify.html",
        {
            "email": addresses[EMAIL],
            "phone": addresses[SMS],
            "email_verified": address_is_verified(user=request.user, channel=EMAIL),
            "phone_verified": address_is_verified(user=request.user, channel=SMS),
            "code_form": code_form,
        },
        status=status,
    )
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@require_http_methods(["GET", "POST"])
def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    """A verification link: GET shows the address and a button (a mail scanner that fetches the
    link verifies nothing), POST confirms it. Works signed in or not: the link is the proof."""
    try:
        if request.method == "POST":
            verified = email_verify(token=token)
            return render(request, "notifications/verify_email.html", {"done": True, "email": verified.address})
        _, email = email_token_read(token=token)
    except VerificationFailed as error:
        return render(request, "notifications/verify_email.html", {"error": error.message}, status=400)
    return render(request, "notifications/verify_email.html", {"email": email})
