"""Routes of the wallet pages of the customer site, the payment provider's webhook, and the
simulated provider's confirmation page (mounted only while that provider is configured)."""

from django.conf import settings
from django.urls import URLPattern, path

from billing import views
from billing.provider import SIMULATED_PROVIDER

urlpatterns: list[URLPattern] = [
    path("wallet/", views.wallet, name="wallet"),
    path("payments/webhook/", views.payment_webhook, name="payment_webhook"),
]
if settings.PAYMENT_PROVIDER == SIMULATED_PROVIDER:
    urlpatterns.append(
        path(
            "simulated-provider/intents/<str:intent_id>/",
            views.simulated_provider_confirm,
            name="simulated_provider_confirm",
        )
    )
