"""Operators' view of the bus: dead letters (inspect, replay, discard) and the outbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from bus.models import DeadLetter, OutboxMessage
from bus.relay import STUCK_AFTER_ATTEMPTS
from bus.services import DeadLetterAlreadyHandled, DeadLetterNotReplayable, dead_letter_discard, dead_letter_replay


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


_M = TypeVar("_M", bound=Model)


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin[DeadLetter]):
    list_display = ["dead_at", "queue", "type", "attempts", "short_reason", "state"]
    list_filter = ["state", "queue", "type"]
    search_fields = ["message_id", "correlation_id", "reason"]
    date_hierarchy = "dead_at"
    actions = ["replay", "discard"]
    fields = (
        "message_id",
        "queue",
        "type",
        "state",
        "attempts",
        "dead_at",
        "handled_at",
        "correlation_id",
        "publisher",
        "reason",
        "payload",
        "headers",
    )
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_staff

    @admin.display(description="reason")
    def short_reason(self, letter: DeadLetter) -> str:
        return letter.reason if len(letter.reason) <= 90 else letter.reason[:87] + "…"

    @admin.display(description="message")
    def payload(self, letter: DeadLetter) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", _pretty(letter.body))

    @admin.action(description="Replay: send back to its queue as a first attempt")
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        self._apply(request, queryset, dead_letter_replay, "replayed")

    @admin.action(description="Discard")
    def discard(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        self._apply(request, queryset, dead_letter_discard, "discarded")

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter], service: Callable[..., object], verb: str
    ) -> None:
        done = 0
        for letter_id in queryset.values_list("pk", flat=True):
            try:
                service(dead_letter_id=letter_id)
                done += 1
            except (DeadLetterAlreadyHandled, DeadLetterNotReplayable) as error:
                self.message_user(request, str(error), messages.WARNING)
        if done:
            self.message_user(request, f"{done} dead letter(s) {verb}.", messages.SUCCESS)

    # Actions need a change-ish permission; operators with view access may act on dead letters.
    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or request.user.has_perm("bus.change_deadletter")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return self.has_replay_permission(request)

    replay.allowed_permissions = ("replay",)  # type: ignore[attr-defined]
    discard.allowed_permissions = ("discard",)  # type: ignore[attr-defined]


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [
            ("unsent", "not sent yet"),
            ("stuck", f"stuck ({STUCK_AFTER_ATTEMPTS}+ failed tries)"),
            ("sent", "sent"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "unsent":
            return queryset.filter(sent_at__isnull=True)
        if self.value() == "stuck":
            return queryset.filter(sent_at__isnull=True, attempts__gte=STUCK_AFTER_ATTEMPTS)
        if self.value() == "sent":
            return queryset.filter(sent_at__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin[OutboxMessage]):
    list_display = [
        "id",
        "created_at",
        "type",
        "exchange",
        "routing_key",
        "aggregate",
        "sent_at",
        "attempts",
        "last_error",
    ]
    list_filter = [OutboxStateFilter, "type", "exchange"]
    search_fields = ["message_id", "aggregate", "correlation_id"]
    fields = (
        "message_id",
        "type",
        "exchange",
        "routing_key",
        "aggregate",
        "correlation_id",
        "priority",
        "created_at",
        "available_at",
        "sent_at",
        "attempts",
        "last_error",
        "message",
    )
    readonly_fields = fields

    @admin.display(description="message")
    def message(self, row: OutboxMessage) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", _pretty(row.body))
