"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "passline.settings")
# Django must be set up before anything imports models (the Channels routing does). Then
# get_asgi_application()'s handler, but with the middleware chain and views in one hop to a
# thread per request (passline/threads.py).
django.setup(set_prefix=False)

from passline.threads import DatabaseThreads, OneHopASGIHandler  # noqa: E402

django_asgi_app = OneHopASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from live import shutdown  # noqa: E402
from live.auth import auth_stack  # noqa: E402
from live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Each request's sync code on one of a few threads that keep their DB connections.
        "http": DatabaseThreads(django_asgi_app, count=settings.WEB_DB_THREADS),
        # Channels' AllowedHostsOriginValidator(AuthMiddlewareStack(...)) plus bearer tokens, with
        # the origin check where cookies make it matter and sessions read past a Redis outage
        # (live/auth.py).
        "websocket": auth_stack(URLRouter(websocket_urlpatterns)),
    }
)

# Under daphne: SIGTERM closes every open socket with 1001 ("going away") before the process
# stops, and the pages reconnect (live/shutdown.py).
shutdown.install()
