"""How a notification leaves: email through Django's email backend (SMTP as settings say,
the console in development) and SMS through a provider interface shaped like Twilio's.

Each sender takes a :class:`~notifications.models.Notification` and returns a
:class:`Sent` or a :class:`Skipped`, or raises: a :class:`PermanentFailure` is recorded as
failed at once; anything else the notifier retries, and dead-letters after its last attempt.

Both go through a circuit breaker (``email``, ``sms``: passline/breakers.py) and carry a
timeout (``EMAIL_TIMEOUT``, ``SMS_TIMEOUT``). A timeout or a provider that is down counts
against the breaker; a refusal (a recipient refused, an invalid number) is the provider working.
While a breaker is open nothing is sent: the notification stays "not sent yet" (a
:class:`TemporaryFailure`, retried by the notifier's retry queues; after the last attempt it is
recorded as failed and dead-lettered, to be replayed), never dropped.
"""

from __future__ import annotations

import base64
import json
import logging
import smtplib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils.module_loading import import_string

from notifications.models import Notification
from passline.breakers import EMAIL, SMS, BreakerOpen, guarded

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    provider_id: str = ""  # the Message-ID, the SMS sid, the sockets reached


@dataclass(frozen=True)
class Skipped:
    reason: str


# --- failures ------------------------------------------------------------------------------------


class DeliveryError(Exception):
    """A message the provider did not take."""


class TemporaryFailure(DeliveryError):
    """Try again later: the provider is down, busy or rate-limiting us (the notifier retries,
    then dead-letters)."""


class PermanentFailure(DeliveryError):
    """Trying again cannot help: the address does not exist, the number cannot take texts, the
    message was refused (recorded as failed at once; no retry, no dead letter)."""


# --- email --------------------------------------------------------------------------------------


def message_id(notification: Notification) -> str:
    """The same Message-ID on every attempt: should a send be repeated after a crash between
    the server's "250 OK" and our commit, mail clients show the two as one message."""
    return f"<notification-{notification.pk}.{notification.key.replace(':', '-')}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"


def send_email(notification: Notification) -> Sent:
    """Through Django's email backend (SMTP in production). A 5xx refusal of the recipient or
    the message is permanent; anything else (4xx, a dropped connection, a timeout) temporary."""
    mail = EmailMessage(
        subject=notification.subject,
        body=notification.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient],
        headers={"Message-ID": message_id(notification)},
        connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
    )
    try:
        # An answer of the server that refuses (a recipient, the message) is the server working.
        refusals = (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPNotSupportedError)
        guarded(EMAIL, "send", lambda: mail.send(fail_silently=False), refusals=refusals)
    except BreakerOpen as error:
        raise TemporaryFailure(f"not sent yet: {error}") from error
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            raise PermanentFailure(f"recipient refused: {error.recipients}") from error
        raise TemporaryFailure(f"recipient refused for now: {error.recipients}") from error
    except (smtplib.SMTPDataError, smtplib.SMTPNotSupportedError) as error:
        if getattr(error, "smtp_code", 0) >= 500:
            raise PermanentFailure(f"message refused: {error}") from error
        raise TemporaryFailure(f"message refused for now: {error}") from error
    except (smtplib.SMTPException, OSError) as error:
        raise TemporaryFailure(f"{type(error).__name__}: {error}") from error
    return Sent(provider_id=message_id(notification))


# --- SMS ------------------------------------------------------------------------------------------


class SmsError(TemporaryFailure):
    """The provider failed to take the text for now (retried)."""


class SmsPermanentError(PermanentFailure):
    """The provider refused the text for good: not a valid number, a landline, opted out."""


class SmsProvider(Protocol):
    """Twilio-shaped: ``send(to=, body=, from_=)`` posts one text and returns the provider's
    message id (Twilio's Message SID), or raises :class:`SmsPermanentError` (Twilio's 4xx: invalid
    number 21211, unsubscribed recipient 21610, …) or :class:`SmsError` (429, 5xx, a timeout).
    ``settings.SMS_PROVIDER`` names the class; it is made with no arguments and reads its own
    settings."""

    def send(self, *, to: str, body: str, from_: str) -> str: ...


class LoggingSmsProvider:
    """Development's and the tests' provider: logs the text instead of sending it.

    Like the simulated card provider's declining cards, numbers ending in ``0000`` fail as a
    provider that is down would (retried, then dead-lettered), and numbers ending in ``0001``
    are refused as not valid (Twilio's test number +15005550001 does the same), so both kinds
    of failure can be seen without a network. Production refuses to start with it (see the
    settings) unless PASSLINE_DEMO=1.
    """

    FAILING_SUFFIX = "0000"
    INVALID_SUFFIX = "0001"

    def send(self, *, to: str, body: str, from_: str) -> str:
        digits = to.replace(" ", "")
        if digits.endswith(self.FAILING_SUFFIX):
            raise SmsError(f"provider unavailable for {to} (numbers ending in {self.FAILING_SUFFIX} always fail)")
        if digits.endswith(self.INVALID_SUFFIX):
            raise SmsPermanentError(f"21211: the 'To' number {to} is not a valid phone number")
        sid = f"SM{uuid.uuid4().hex}"
        # The body too (a verification code included): showing the text is this provider's job.
        logger.info("sms sent", extra={"to": to, "from": from_, "sms_sid": sid, "body": body})
        return sid


class TwilioSmsProvider:
    """Twilio's Messages API over HTTPS (the standard library's client: no SDK needed):
    ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``; ``TWILIO_API_URL`` only to point it elsewhere."""

    def send(self, *, to: str, body: str, from_: str) -> str:
        account, token = settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN
        url = f"{settings.TWILIO_API_URL.rstrip('/')}/2010-04-01/Accounts/{account}/Messages.json"
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise SmsPermanentError("TWILIO_API_URL must be https")
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode({"To": to, "From": from_, "Body": body}).encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(f"{account}:{token}".encode()).decode(),
                "Accept": "application/json",
            },
            method="POST",
        )
        try:
            # (the URL's scheme is checked above: https, or a local stand-in)
            with urllib.request.urlopen(request, timeout=settings.SMS_TIMEOUT) as response:  # nosec B310
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            detail = _twilio_error(error)
            if error.code == 429 or error.code >= 500:
                raise SmsError(f"twilio {error.code}: {detail}") from error
            raise SmsPermanentError(f"twilio {error.code}: {detail}") from error
        except (OSError, ValueError) as error:
            raise SmsError(f"twilio unreachable: {error!r}") from error
        sid = answer.get("sid") if isinstance(answer, dict) else None
        if not isinstance(sid, str) or not sid:
            raise SmsError("twilio answered without a message sid")
        return sid


def _twilio_error(error: urllib.error.HTTPError) -> str:
    try:
        body = json.load(error)
        return f"{body.get('code')}: {body.get('message')}"
    except (OSError, ValueError, AttributeError):
        return error.reason or ""


def sms_provider() -> SmsProvider:
    return import_string(settings.SMS_PROVIDER)()


def send_sms(notification: Notification) -> Sent | Skipped:
    if not settings.SMS_PROVIDER:
        return Skipped("texts are turned off (no SMS_PROVIDER)")
    provider = sms_provider()
    try:
        sid = guarded(
            SMS,
            "send",
            lambda: provider.send(to=notification.recipient, body=notification.body, from_=settings.SMS_FROM),
            refusals=(SmsPermanentError,),
        )
    except BreakerOpen as error:
        raise SmsError(f"not sent yet: {error}") from error
    return Sent(provider_id=sid)
