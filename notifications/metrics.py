"""The notifications' metrics (Prometheus, multiprocess: see operations/multiprocess.py): what
became of each notification, by channel, counted when its row commits (a rolled-back attempt
counts nothing). Reasons are words, never the logged text."""

from __future__ import annotations

from django.db import transaction
from prometheus_client import Counter

NOTIFICATIONS = Counter(
    "passline_notifications",
    "Notifications by channel (email, sms, push), outcome (sent, failed, suppressed) and reason",
    ["channel", "outcome", "reason"],
)

# The delivery log's reasons for not sending (notifications/services.py, delivery.py), as labels.
_SUPPRESSED = (
    ("watching the order live", "watching"),
    ("no page of the site open", "no_page_open"),
    ("no email address", "no_address"),
    ("no phone number", "no_address"),
    ("email address not verified", "not_verified"),
    ("phone number not verified", "not_verified"),
    ("hourly cap reached", "cap"),
    ("no longer the customer's address", "address_changed"),
    ("verified already", "verified_already"),
    ("texts are turned off", "channel_off"),
)


def suppressed_reason(reason: str) -> str:
    for start, label in _SUPPRESSED:
        if reason.startswith(start):
            return label
    return "other"


def count(channel: str, outcome: str, reason: str = "") -> None:
    """Count a notification's outcome once the transaction that records it commits."""
    label = {"sent": "none", "suppressed": suppressed_reason(reason)}.get(outcome, reason or "other")
    child = NOTIFICATIONS.labels(channel, outcome, label)
    transaction.on_commit(child.inc)
