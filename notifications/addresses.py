"""Verified addresses: emails and texts go only to an address its customer proved is theirs.

* Email: a link with a signed, expiring token (``django.core.signing``) that names the
  customer and the address; following it (and confirming) marks the address verified, as long
  as it is still the account's address.
* Phone: a short code texted to the number; only a keyed digest of it is stored
  (``salted_hmac`` with the SECRET_KEY), it expires after ``VERIFY_PHONE_CODE_SECONDS`` and is
  spent after ``VERIFY_PHONE_CODE_ATTEMPTS`` wrong guesses.

A verification holds for the address it proved: once the account's address is another one,
the customer has no verified address on that channel until they prove the new one.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from notifications.models import PhoneCode, VerifiedAddress
from ordering.models import CustomerProfile
from passline.db import one_or_none

User = get_user_model()
EMAIL = VerifiedAddress.Channel.EMAIL
SMS = VerifiedAddress.Channel.SMS

_EMAIL_SALT = "notifications.verify-email"
_CODE_SALT = "notifications.phone-code"
CODE_DIGITS = 6


class VerificationFailed(Exception):
    """A link or code that does not verify anything; ``message`` is for the customer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def normalize(channel: str, address: str) -> str:
    """The form an address is compared and stored in: an email as written (trimmed), a phone
    number as its digits with a leading ``+`` if it had one (``+49 30 123`` is ``+4930123``)."""
    address = (address or "").strip()
    if channel == SMS:
        return ("+" if address.startswith("+") else "") + re.sub(r"\D", "", address)
    return address


def current_addresses(user: Any, profile: CustomerProfile | None = None) -> dict[str, str]:
    """The account's email and phone number as they are now (``profile`` if already read)."""
    if profile is None:
        profile = one_or_none(CustomerProfile.objects.filter(user_id=user.pk))
    return {EMAIL: user.email or "", SMS: profile.phone if profile else ""}


def verified_addresses(user_ids: set[int] | list[int]) -> dict[int, dict[str, str]]:
    """Each customer's verified addresses by channel, in one query."""
    verified: dict[int, dict[str, str]] = {}
    for user_id, channel, address in VerifiedAddress.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "channel", "address"
    ):
        verified.setdefault(user_id, {})[channel] = address
    return verified


def is_verified(*, verified: dict[str, str], channel: str, address: str) -> bool:
    """Whether ``address`` is the one proved on ``channel`` (``verified``: a customer's entry of
    :func:`verified_addresses`)."""
    normal = normalize(channel, address)
    return bool(normal) and verified.get(channel) == normal


def address_is_verified(*, user: Any, channel: str) -> bool:
    """Whether the account's current address on ``channel`` is verified."""
    address = current_addresses(user)[channel]
    return is_verified(verified=verified_addresses([user.pk]).get(user.pk, {}), channel=channel, address=address)


@transaction.atomic
def address_mark_verified(*, user: Any, channel: str, address: str | None = None) -> VerifiedAddress:
    """Record ``address`` (by default the account's current one) as proved by ``user``."""
    normal = normalize(channel, current_addresses(user)[channel] if address is None else address)
    if not normal:
        raise VerificationFailed("There is no address to verify.")
    row, _ = VerifiedAddress.objects.update_or_create(
        user_id=user.pk, channel=channel, defaults={"address": normal, "verified_at": timezone.now()}
    )
    return row


def address_changed(*, user_id: int, channel: str, address: str) -> int:
    """The account's address on ``channel`` is now ``address``: a verification of another
    address no longer holds. Returns how many were dropped (0 or 1)."""
    deleted, _ = (
        VerifiedAddress.objects.filter(user_id=user_id, channel=channel)
        .exclude(address=normalize(channel, address))
        .delete()
    )
    return deleted


# --- email: a signed link --------------------------------------------------------------------


def email_token(*, user: Any, email: str) -> str:
    return signing.dumps({"u": user.pk, "e": email}, salt=_EMAIL_SALT, compress=True)


def email_link(*, user: Any, email: str) -> str:
    path = reverse("verify_email", args=[email_token(user=user, email=email)])
    return settings.SITE_URL.rstrip("/") + path


def email_token_read(*, token: str) -> tuple[Any, str]:
    """The customer and the address a link was made for, if it is genuine, unexpired and the
    address is still the customer's; else :class:`VerificationFailed`."""
    try:
        data = signing.loads(token, salt=_EMAIL_SALT, max_age=settings.VERIFY_EMAIL_LINK_SECONDS)
    except signing.SignatureExpired:
        raise VerificationFailed("This link has expired. Ask for a new one on your account page.") from None
    except signing.BadSignature:
        raise VerificationFailed("This link is not valid. Ask for a new one on your account page.") from None
    if not (isinstance(data, dict) and isinstance(data.get("u"), int) and isinstance(data.get("e"), str)):
        raise VerificationFailed("This link is not valid. Ask for a new one on your account page.")
    user = one_or_none(User.objects.filter(pk=data["u"], is_active=True))
    if user is None:
        raise VerificationFailed("This link is not valid. Ask for a new one on your account page.")
    if normalize(EMAIL, user.email) != normalize(EMAIL, data["e"]):
        raise VerificationFailed("This link is for an address that is no longer on the account.")
    return user, data["e"]


def email_verify(*, token: str) -> VerifiedAddress:
    """Follow a verification link (see :func:`email_token_read`)."""
    user, email = email_token_read(token=token)
    return address_mark_verified(user=user, channel=EMAIL, address=email)


# --- phone: a texted code ----------------------------------------------------------------------


def _digest(user_id: int, phone: str, code: str) -> str:
    return salted_hmac(_CODE_SALT, f"{user_id}:{phone}:{code}", algorithm="sha256").hexdigest()


def phone_code_mint(*, user: Any, phone: str) -> str:
    """A new code for ``phone``, replacing any earlier one: its digest is stored, the code
    itself only returned (to be texted, never written down)."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    normal = normalize(SMS, phone)
    now = timezone.now()
    PhoneCode.objects.update_or_create(
        user_id=user.pk,
        defaults={
            "phone": normal,
            "digest": _digest(user.pk, normal, code),
            "expires_at": now + timedelta(seconds=settings.VERIFY_PHONE_CODE_SECONDS),
            "attempts": 0,
            "created_at": now,
        },
    )
    return code


def phone_verify(*, user: Any, code: str) -> VerifiedAddress:
    """Check a code the customer typed against the last one texted to their current number.

    A wrong code counts against the code (under a row lock: two guesses at once both count);
    after ``VERIFY_PHONE_CODE_ATTEMPTS`` wrong ones, or once expired, no code verifies until a
    new one is texted."""
    outcome = _phone_check(user=user, code=code)
    if isinstance(outcome, str):
        raise VerificationFailed(outcome)  # the wrong guess is committed by then
    return outcome


@transaction.atomic
def _phone_check(*, user: Any, code: str) -> VerifiedAddress | str:
    row = one_or_none(PhoneCode.objects.select_for_update().filter(user_id=user.pk))
    phone = normalize(SMS, current_addresses(user)[SMS])
    if row is None or not phone or row.phone != phone:
        return "Ask for a code for your phone number first."
    if row.expires_at <= timezone.now():
        return "This code has expired. Ask for a new one."
    if row.attempts >= settings.VERIFY_PHONE_CODE_ATTEMPTS:
        return "Too many wrong codes. Ask for a new one."
    typed = re.sub(r"\s", "", code or "")
    if not constant_time_compare(_digest(user.pk, phone, typed), row.digest):
        row.attempts += 1
        row.save(update_fields=["attempts"])
        left = settings.VERIFY_PHONE_CODE_ATTEMPTS - row.attempts
        return (
            f"That is not the code we sent ({left} more tries)." if left else "Too many wrong codes. Ask for a new one."
        )
    row.delete()  # spent
    return address_mark_verified(user=user, channel=SMS, address=phone)
