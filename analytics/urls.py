"""The staff dashboard's pages."""

from django.urls import path

from analytics import views

urlpatterns = [
    path("dashboard/", views.dashboard_index, name="dashboard_index"),
    path("dashboard/<int:restaurant_id>/", views.dashboard_restaurant, name="dashboard_restaurant"),
]
