"""Readiness and the operations page."""

from django.urls import path

from operations import views

urlpatterns = [
    path("readyz", views.readyz, name="readyz"),
    path("ops/", views.ops_page, name="ops"),
    path("ops/status.json", views.ops_status, name="ops_status"),
]
