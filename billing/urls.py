"""Routes of the wallet pages of the customer site, orders' receipts, the payment provider's
webhook, and the simulated provider's confirmation page (mounted only while that provider is
configured)."""

from django.conf import settings
from django.urls import URLPattern, path

from billing import receipt_views, views
from billing.provider import SIMULATED_PROVIDER

urlpatterns: list[URLPattern] = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/top-ups/<int:top_up_id>/", views.top_up_wait, name="wallet_top_up_wait"),
    path("wallet/top-ups/<int:top_up_id>/status", views.top_up_status, name="wallet_top_up_status"),
    path("payments/webhook/", views.payment_webhook, name="payment_webhook"),
    path("orders/<int:order_id>/pay-by-card/", views.order_pay_by_card, name="order_pay_by_card"),
    path("orders/<int:order_id>/receipt/", receipt_views.receipt_page, name="order_receipt"),
    path("orders/<int:order_id>/receipt.pdf", receipt_views.receipt_download, name="order_receipt_pdf"),
]
if settings.PAYMENT_PROVIDER == SIMULATED_PROVIDER:
    urlpatterns.append(
        path(
            "simulated-provider/intents/<str:intent_id>/",
            views.simulated_provider_confirm,
            name="simulated_provider_confirm",
        )
    )
