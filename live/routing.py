"""WebSocket routes. The order and kitchen sockets arrive with the live-tracking work."""

websocket_urlpatterns: list = []
