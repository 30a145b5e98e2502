"""WebSocket routes."""

from django.urls import path

from live.consumers import OrderConsumer

websocket_urlpatterns = [
    path("ws/orders/<int:order_id>/", OrderConsumer.as_asgi()),
]
