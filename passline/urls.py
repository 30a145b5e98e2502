"""URL routes: the customer site, the JSON API, the admin and health."""

from django.contrib import admin
from django.urls import include, path

from live.views import LogoutView
from passline import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/", include("ordering.api_urls")),
    # Logging out also closes the session's WebSockets, so it lives with the live pages.
    path("logout/", LogoutView.as_view(), name="logout"),
    path("", include("billing.urls")),
    path("", include("analytics.urls")),
    path("", include("ordering.urls")),
]
