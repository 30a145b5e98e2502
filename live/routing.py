"""WebSocket routes."""

from typing import Any

from django.urls import path

from live.consumers import CustomerConsumer, OrderConsumer
from live.dashboard import DashboardConsumer
from live.restaurant_consumers import BoardConsumer, KitchenConsumer, MenuConsumer

# Channels routes are django.urls.path() over ASGI applications, which django-stubs types as views
# only (see pyproject.toml); channels' URLRouter takes them.
websocket_urlpatterns: list[Any] = [
    path("ws/orders/<int:order_id>/", OrderConsumer.as_asgi()),
    path("ws/kitchen/<int:restaurant_id>/", KitchenConsumer.as_asgi()),
    path("ws/menus/<int:restaurant_id>/", MenuConsumer.as_asgi()),
    path("ws/boards/<int:restaurant_id>/", BoardConsumer.as_asgi()),
    path("ws/me/", CustomerConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
    path("ws/dashboard/<int:restaurant_id>/", DashboardConsumer.as_asgi()),
]
