"""How the web process runs Django's sync code under ASGI: in one hop per request, on one of
a few long-lived threads that keep their database connections.

:class:`OneHopASGIHandler` is Django's ASGI handler with the middleware chain built for sync
code and called through one ``sync_to_async``. Every view of the project is sync, and so are
most middlewares (``MiddlewareMixin``): in Django's async chain each of their hooks, and the
view, is a hop of its own from the event loop to a thread and back (seventeen for a
page here, each a few futures, a thread wake-up and a wake-up of the loop). Here a request
makes one hop there and one back, and the chain runs as it would under WSGI.

Django's ASGI handler runs each request's sync code (sync middleware hooks, the view, the
response's close) in a ``ThreadSensitiveContext`` of its own: a new thread per request, hence
a new MariaDB connection per request (or, with ``CONN_MAX_AGE``, one left open per thread ever
used, until MariaDB refuses more). :class:`DatabaseThreads` wraps the HTTP application so that
each request's sync code runs on one of ``count`` threads that live as long as the process:
every sync call of one request stays on one thread (Django's thread-sensitive rule holds), the
threads keep their connections between requests (``CONN_MAX_AGE``), and the process holds at
most ``count`` connections for HTTP, however many requests arrive together.

A request goes to the thread with the fewest requests in hand. The count is small: under one
GIL more threads add no CPU, only overlap of the time a thread waits on MariaDB.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[Any]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class OneHopASGIHandler(ASGIHandler):
    _middleware_chain: Callable[..., Any]  # BaseHandler's, missing from django-stubs

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)


class DatabaseThreads:
    def __init__(self, app: ASGIApp, *, count: int) -> None:
        if count < 1:
            raise ValueError("at least one thread")
        self.app = app
        self.executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"web-db-{index}") for index in range(count)
        ]
        self.in_hand = [0] * count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        index = min(range(len(self.in_hand)), key=self.in_hand.__getitem__)
        self.in_hand[index] += 1
        try:
            # Django's own context inside finds this one and leaves it in place.
            async with ThreadSensitiveContext(executor=self.executors[index]):
                await self.app(scope, receive, send)
        finally:
            self.in_hand[index] -= 1
