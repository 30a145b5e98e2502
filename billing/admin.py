"""Wallets, the ledger, top-ups and payments: read-only for operators (money moves only
through the services)."""

from django.contrib import admin
from django.http import HttpRequest

from billing.models import LedgerEntry, Payment, PaymentEvent, TopUp, Wallet
from passline.readonly_admin import ReadOnlyAdmin as ReadOnly


class LedgerInline(admin.TabularInline[LedgerEntry, Wallet]):
    model = LedgerEntry
    fields = ("created_at", "kind", "amount", "balance_after", "description", "idempotency_key", "correlation_id")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-id"]

    def has_add_permission(self, request: HttpRequest, obj: Wallet | None = None) -> bool:
        return False


@admin.register(Wallet)
class WalletAdmin(ReadOnly):
    list_display = ["user", "balance", "currency", "updated_at"]
    search_fields = ["user__username", "user__email"]
    inlines = [LedgerInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnly):
    list_display = ["created_at", "wallet", "kind", "amount", "balance_after", "description"]
    list_filter = ["kind"]
    search_fields = ["wallet__user__username", "idempotency_key", "correlation_id", "description"]
    date_hierarchy = "created_at"


@admin.register(TopUp)
class TopUpAdmin(ReadOnly):
    list_display = ["created_at", "user", "amount", "status", "card_last4", "decline_reason", "provider_intent_id"]
    list_filter = ["status"]
    search_fields = ["user__username", "provider_reference", "provider_intent_id"]


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnly):
    list_display = ["received_at", "type", "provider_event_id", "intent_id", "top_up", "outcome"]
    list_filter = ["type", "outcome"]
    search_fields = ["provider_event_id", "intent_id"]


@admin.register(Payment)
class PaymentAdmin(ReadOnly):
    list_display = ["order", "amount", "status", "failure_reason", "refund_reason", "created_at", "refunded_at"]
    list_filter = ["status"]
    search_fields = ["order__id"]
