"""The delivery log, read-only, per customer (``customer:7``) or order (``order:42``), with a
resend action: what each customer was told, by which channel, and what became of it."""

from __future__ import annotations

import re

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from notifications.models import Notification
from notifications.services import NotificationUnwritable, notification_resend
from passline.readonly_admin import ReadOnlyAdmin

_BY_SUBJECT = re.compile(r"^\s*(order|customer)\s*[:#]\s*(\d{1,19})\s*$", re.IGNORECASE)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "customer",
        "message",
        "channel",
        "status",
        "attempts",
        "recipient",
        "order_link",
        "reason",
    ]
    list_filter = ["status", "channel", "message"]
    list_select_related = ["customer"]
    search_fields = ["customer__username", "customer__email", "recipient", "key", "correlation_id"]
    search_help_text = (
        "customer:7 or order:42 for one customer's or order's log; or a username, address, key or correlation id."
    )
    date_hierarchy = "created_at"
    actions = ["resend"]
    fields = (
        "key",
        "customer",
        "order",
        "message",
        "channel",
        "recipient",
        "subject",
        "text",
        "link",
        "event_values",
        "status",
        "reason",
        "attempts",
        "provider_id",
        "correlation_id",
        "resend_of",
        "created_at",
        "sent_at",
    )
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Notification], search_term: str):
        match = _BY_SUBJECT.match(search_term or "")
        if match:
            field = "order_id" if match[1].lower() == "order" else "customer_id"
            return queryset.filter(**{field: int(match[2])}), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="order", ordering="order_id")
    def order_link(self, notification: Notification) -> str:
        if notification.order_id is None:
            return "—"
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:ordering_order_change", args=[notification.order_id]),
            notification.order_id,
        )

    @admin.display(description="body")
    def text(self, notification: Notification) -> str:
        """The text as sent; a notification not sent when it was planned was never written."""
        if notification.body:
            return notification.body
        return (
            f"Not written: it was not sent ({notification.reason or notification.get_status_display()}). "
            "Resending it writes it from the order as it is now."
        )

    @admin.action(description="Send the selected notifications again", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        resent, unwritable = 0, []
        for notification in queryset.order_by("pk"):
            try:
                notification_resend(notification_id=notification.pk)
            except NotificationUnwritable as error:
                unwritable.append(str(error))
            else:
                resent += 1
        self.message_user(request, f"{resent} notification(s) queued to be sent again.", messages.SUCCESS)
        for reason in unwritable:
            self.message_user(request, reason, messages.ERROR)

    # The log is read-only, but resending acts: it needs the change permission, not only view.
    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or request.user.has_perm("notifications.change_notification")
