"""The analytics tables, read-only: what the events said about each order."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from analytics.models import DishLine, OrderFact


class DishLineInline(admin.TabularInline):
    model = DishLine
    extra = 0
    can_delete = False
    readonly_fields = ["menu_item_id", "name", "quantity", "unit_price"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(OrderFact)
class OrderFactAdmin(admin.ModelAdmin):
    list_display = [
        "order_id",
        "restaurant_id",
        "status",
        "placed_at",
        "paid_at",
        "paid_amount",
        "ready_at",
        "exit_status",
        "refunded_amount",
    ]
    list_filter = ["status", "exit_status"]
    search_fields = ["=order_id", "=restaurant_id"]
    date_hierarchy = "placed_at"
    inlines = [DishLineInline]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in OrderFact._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
