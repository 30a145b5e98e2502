"""URL routes: the customer site, the JSON API, the admin and health."""

from django.contrib import admin
from django.urls import include, path

from passline import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/", include("ordering.api_urls")),
    path("", include("billing.urls")),
    path("", include("ordering.urls")),
]
