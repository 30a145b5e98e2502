"""Static files through the async middleware chain (as daphne runs it), and pages past it."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from passline.middleware import StaticFilesMiddleware

pytestmark = pytest.mark.django_db(transaction=True)


def test_static_files_and_pages_pass_the_async_chain_without_a_sync_only_middleware():
    from django.conf import settings

    # the static-files middleware takes part in the async chain, so no request hops to a
    # thread and back just to pass it
    assert StaticFilesMiddleware.async_capable and "passline.middleware.StaticFilesMiddleware" in settings.MIDDLEWARE
    assert "whitenoise.middleware.WhiteNoiseMiddleware" not in settings.MIDDLEWARE

    async def scenario():
        client = AsyncClient()
        return await client.get("/static/js/notifications.js"), await client.get("/healthz")

    script, page = async_to_sync(scenario)()
    body = b"".join(script.streaming_content) if script.streaming else script.content
    assert script.status_code == 200 and b"PasslineLive.open" in body
    assert page.status_code == 200
