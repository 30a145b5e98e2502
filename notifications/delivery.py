"""How a notification leaves: email through Django's email backend (SMTP as settings say,
the console in development) and SMS through a provider interface shaped like Twilio's.

Each sender takes a :class:`~notifications.models.Notification` and returns a
:class:`Sent` or a :class:`Skipped`, or raises: the notifier retries what raised and
dead-letters it after its last attempt.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils.module_loading import import_string

from notifications.models import Notification

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    provider_id: str = ""  # the Message-ID, the SMS sid, the sockets reached


@dataclass(frozen=True)
class Skipped:
    reason: str


# --- email --------------------------------------------------------------------------------------


def message_id(notification: Notification) -> str:
    """The same Message-ID on every attempt: should a send be repeated after a crash between
    the server's "250 OK" and our commit, mail clients show the two as one message."""
    return f"<notification-{notification.pk}.{notification.key.replace(':', '-')}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"


def send_email(notification: Notification) -> Sent:
    mail = EmailMessage(
        subject=notification.subject,
        body=notification.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient],
        headers={"Message-ID": message_id(notification)},
        connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
    )
    mail.send(fail_silently=False)
    return Sent(provider_id=message_id(notification))


# --- SMS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsMessage:
    """What a provider answers, as Twilio's Message resource names it."""

    sid: str
    status: str  # "queued", "sent", …


class SmsError(Exception):
    """The provider refused or failed to take the message (retried)."""


class SmsProvider(Protocol):
    """Twilio-shaped: ``client.messages.create(to=..., from_=..., body=...)`` becomes
    ``provider.create(to=..., from_=..., body=...)``; an adapter to Twilio's client (or any
    other provider's) is a class of a few lines named by ``settings.SMS_PROVIDER``."""

    def create(self, *, to: str, from_: str, body: str) -> SmsMessage: ...


class LoggingSmsProvider:
    """Development's and the tests' provider: logs the text instead of sending it.

    Like the simulated card provider's declining cards, numbers ending in ``0000`` fail, as a
    provider that is down would, so retries and dead letters can be seen without a network.
    """

    FAILING_SUFFIX = "0000"

    def create(self, *, to: str, from_: str, body: str) -> SmsMessage:
        if to.replace(" ", "").endswith(self.FAILING_SUFFIX):
            raise SmsError(f"provider unavailable for {to} (numbers ending in {self.FAILING_SUFFIX} always fail)")
        sid = f"SM{uuid.uuid4().hex}"
        logger.info("sms sent", extra={"to": to, "from": from_, "sms_sid": sid, "body": body})
        return SmsMessage(sid=sid, status="sent")


def sms_provider() -> SmsProvider:
    return import_string(settings.SMS_PROVIDER)()


def send_sms(notification: Notification) -> Sent:
    answer = sms_provider().create(to=notification.recipient, from_=settings.SMS_FROM, body=notification.body)
    return Sent(provider_id=answer.sid)
