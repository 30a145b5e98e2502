"""URL routes: the customer site, the JSON API, the admin and health."""

from django.contrib import admin
from django.urls import include, path

from live.views import LogoutView
from operations import metrics
from passline import health
from passline.api import api

# A database outage answers 503 with Retry-After (a page, or JSON under /api/v1/); anything
# else the 500 page.
handler500 = "passline.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    # /readyz and the operations page for staff (/ops/)
    path("", include("operations.urls")),
    path("api/v1/", api.urls),
    # Logging out also closes the session's WebSockets, so it lives with the live pages.
    path("logout/", LogoutView.as_view(), name="logout"),
    path("", include("billing.urls")),
    path("", include("analytics.urls")),
    path("", include("notifications.urls")),
    path("", include("ordering.urls")),
]
