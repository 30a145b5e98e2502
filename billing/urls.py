"""Routes of the wallet pages of the customer site."""

from django.urls import path

from billing import views

urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
]
