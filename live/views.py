"""Logging out also closes the WebSockets the browser session had open."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from live.groups import session_group
from live.layer import passline_layer


class LogoutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        session_key = request.session.session_key
        response = super().post(request, *args, **kwargs)
        if session_key:
            async_to_sync(passline_layer().group_send)(session_group(session_key), {"type": "session.ended"})
        return response
