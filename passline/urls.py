"""URL routes: the customer site, the JSON API, the admin and health."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.cache import cache_control

from live.views import LogoutView
from operations import metrics
from ordering import views as ordering_views
from passline import health
from passline.api import api

# A database outage answers 503 with Retry-After (a page, or JSON under /api/v1/); anything
# else the 500 page.
handler500 = "passline.errors.server_error"


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """The site's icon for clients that ask for /favicon.ico (the pages link the SVG)."""
    return HttpResponseRedirect(static("img/favicon.svg"))


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    # Browsers (and tools) ask for /favicon.ico whatever the pages' <link rel="icon"> says. A
    # temporary redirect, cached for a day, to the static SVG: its hashed name changes with
    # each deploy, so a permanent one would point at a file that is gone.
    path("media/<path:name>", ordering_views.photo_file, name="photo_file"),
    path("favicon.ico", cache_control(max_age=86400, public=True)(favicon), name="favicon"),
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
