"""The operator's view of restaurants, menus, staff and orders. Orders are read-only here:
their status changes only through the status machine, never by editing a field."""

from urllib.parse import urlencode

from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from ordering.models import (
    CustomerProfile,
    MenuCategory,
    MenuItem,
    Option,
    OptionGroup,
    Order,
    OrderEvent,
    OrderLine,
    Restaurant,
    StaffMembership,
)


class MenuCategoryInline(admin.TabularInline):
    model = MenuCategory
    extra = 0


class StaffInline(admin.TabularInline):
    model = StaffMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Restaurant)
class RestaurantAdmin(admin.ModelAdmin):
    list_display = ["name", "cuisine", "is_open", "prep_time_minutes"]
    list_filter = ["is_open", "cuisine"]
    list_editable = ["is_open"]
    search_fields = ["name", "cuisine"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MenuCategoryInline, StaffInline]


@admin.register(MenuCategory)
class MenuCategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "restaurant", "station", "position"]
    list_filter = ["restaurant", "station"]


@admin.register(MenuItem)
class MenuItemAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "restaurant",
        "category",
        "price",
        "vat_rate",
        "is_available",
        "daily_stock",
        "remaining_today",
    ]
    list_filter = ["restaurant", "is_available", "vat_rate"]
    list_editable = ["price", "vat_rate", "is_available"]
    search_fields = ["name"]

    @admin.display(description="left today")
    def remaining_today(self, item: MenuItem) -> str:
        remaining = item.remaining_today
        return "no limit" if remaining is None else str(remaining)


class OptionInline(admin.TabularInline):
    model = Option
    extra = 0
    fields = ["name", "price_delta", "position", "is_available"]


@admin.register(OptionGroup)
class OptionGroupAdmin(admin.ModelAdmin):
    """A dish's option groups (the staff pages edit them too: /staff/<id>/dishes/<id>/choices/)."""

    list_display = ["name", "menu_item", "min_choices", "max_choices", "position"]
    list_filter = ["menu_item__restaurant"]
    search_fields = ["name", "menu_item__name"]
    list_select_related = ["menu_item"]
    raw_id_fields = ["menu_item"]
    inlines = [OptionInline]


@admin.register(StaffMembership)
class StaffMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "restaurant", "created_at"]
    list_filter = ["restaurant"]
    autocomplete_fields = ["user"]


@admin.register(CustomerProfile)
class CustomerProfileAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "phone",
        "notify_email",
        "notify_sms",
        "notify_push",
        "notify_while_watching",
        "delivery_log",
    ]
    search_fields = ["user__username", "user__email", "phone"]

    @admin.display(description="notifications")
    def delivery_log(self, profile: CustomerProfile) -> str:
        url = reverse("admin:notifications_notification_changelist") + f"?q=customer:{profile.user_id}"
        return format_html('<a href="{}">Delivery log</a>', url)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ("name", "quantity", "unit_price", "vat_rate", "menu_item", "done_at")
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    """The order's timeline, oldest step first."""

    model = OrderEvent
    verbose_name = "timeline step"
    verbose_name_plural = "timeline"
    fields = ("version", "at", "from_status", "status", "actor_kind", "actor", "reason", "correlation_id")
    readonly_fields = fields
    ordering = ["version"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "restaurant", "status", "version", "total", "created_at"]
    list_filter = ["status", "restaurant"]
    search_fields = ["id", "customer__username", "customer__email"]
    date_hierarchy = "created_at"
    list_select_related = ["customer", "restaurant"]
    inlines = [OrderLineInline, OrderEventInline]
    readonly_fields = [
        "customer",
        "restaurant",
        "status",
        "version",
        "ticket_revision",
        "priority",
        "total",
        "currency",
        "delivery_address",
        "notes",
        "idempotency_key",
        "stock_date",
        "created_at",
        "updated_at",
        "audit_trail",
        "message_tree",
    ]
    exclude = ["request_fingerprint"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="audit trail")
    def audit_trail(self, order: Order) -> str:
        """Every message every service sent about this order, oldest first."""
        url = f"{reverse('admin:audit_auditrecord_changelist')}?{urlencode({'q': f'order:{order.pk}'})}"
        return format_html('<a href="{}">Everything the services said about this order</a>', url)

    @admin.display(description="messages")
    def message_tree(self, order: Order) -> str:
        """The order's messages nested by causation, with their handlers and timings."""
        if order.pk is None:
            return "-"
        # The audit app draws it (its template tag): ordering knows nothing of the trail's tables.
        return render_to_string("admin/ordering/order/message_tree.html", {"order_id": order.pk})

    class Media:
        css = {"all": ["css/admin-trace.css"]}
