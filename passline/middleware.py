"""HTTP middleware of the project."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from csp.middleware import CSPMiddleware
from csp.utils import build_policy
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from whitenoise.middleware import WhiteNoiseMiddleware

from bus.correlation import clean_correlation_id, correlation_context

REQUEST_ID_HEADER = "X-Request-ID"
API_PREFIX = "/api/v1/"


class BothModes:
    """Middleware that runs in whichever chain it is put in, sync or async (Django hands an
    async ``get_response`` in the async chain, as under daphne): ``__call__`` then hands over to
    ``__acall__``, and otherwise to ``call``, so no request hops between threads to pass it."""

    sync_capable = True
    async_capable = True

    def adopt_mode(self, get_response: Callable[..., object]) -> None:
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        return self.__acall__(request) if self.is_async else self.call(request)

    def call(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError


class CorrelationIdMiddleware(BothModes):
    """Give every request a correlation id (the caller's ``X-Request-ID`` when it is sane).

    The id is echoed back in the response header, set for the request's logging and
    copied into every event the request causes.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]):
        self.get_response = get_response
        self.adopt_mode(get_response)

    @staticmethod
    def _correlation_id(request: HttpRequest) -> str:
        correlation_id = clean_correlation_id(request.headers.get(REQUEST_ID_HEADER))
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        return correlation_id

    def call(self, request: HttpRequest) -> HttpResponse:
        correlation_id = self._correlation_id(request)
        with correlation_context(correlation_id):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = correlation_id  # type: ignore[index]
        return response  # type: ignore[return-value]

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        correlation_id = self._correlation_id(request)
        with correlation_context(correlation_id):
            response = await self.get_response(request)  # type: ignore[misc]
        response[REQUEST_ID_HEADER] = correlation_id
        return response


class StaticFilesMiddleware(BothModes, WhiteNoiseMiddleware):
    """WhiteNoise, able to run in the async middleware chain.

    WhiteNoise's own middleware is sync-only: under ASGI Django then runs everything above it
    on a thread, hops back to the event loop for what is below it, and to a thread again for
    the view — on every request, static or not. Here a request for anything but a static file
    goes straight on; a static file is served as WhiteNoise serves it, off the event loop.
    """

    def __init__(self, get_response, settings=django_settings):
        super().__init__(get_response, settings=settings)
        self.adopt_mode(get_response)

    def call(self, request: HttpRequest) -> HttpResponse:
        return WhiteNoiseMiddleware.__call__(self, request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)


class MethodNotAllowedPageMiddleware(BothModes):
    """A site address that only a form's button POSTs to (cancel an order, log out), opened as
    a link, typed or reloaded, answers a page of the site that says to use the button, with a
    link back to the page that has it, instead of the empty 405 of ``require_POST`` and of
    class-based views (a blank browser error page). One place for every such address; the API
    keeps its own JSON 405."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]):
        self.get_response = get_response
        self.adopt_mode(get_response)

    @staticmethod
    def _needs_page(request: HttpRequest, response: HttpResponse) -> bool:
        return (
            response.status_code == 405
            and not request.path.startswith(API_PREFIX)
            and not getattr(response, "streaming", False)
            and not response.content
        )

    @staticmethod
    def _page(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        page = HttpResponse(
            render_to_string("405.html", {"back": _page_above(request.path)}, request=request), status=405
        )
        page["Allow"] = response.get("Allow", "")
        return page

    def call(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self._needs_page(request, response):  # type: ignore[arg-type]
            return self._page(request, response)  # type: ignore[arg-type]
        return response  # type: ignore[return-value]

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)  # type: ignore[misc]
        if self._needs_page(request, response):
            return await sync_to_async(self._page)(request, response)
        return response


def _page_above(path: str) -> str:
    """The page one level up (``/orders/5/`` for ``/orders/5/cancel/``): where the button is."""
    above = path.rstrip("/").rsplit("/", 1)[0] + "/"
    try:
        resolve(above)
    except Resolver404:
        return "/"
    return above


class ContentSecurityPolicyMiddleware(BothModes, CSPMiddleware):
    """django-csp's Content-Security-Policy header (settings.CONTENT_SECURITY_POLICY), set on
    the event loop under daphne: its request and response hooks do no I/O, so they run inline
    instead of on a thread as Django's adapter of a sync-style middleware would run them."""

    # A view that changes the policy (django-csp's decorators) or a page that asked for a nonce
    # gets it built for it; every other response gets the same header, built once.
    OVERRIDES = ("_csp_config", "_csp_update", "_csp_replace", "_csp_exempt")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]):
        super().__init__(get_response)
        self.adopt_mode(get_response)
        self._policy = build_policy()

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        plain = getattr(request, "_csp_nonce", None) is None and not any(hasattr(response, a) for a in self.OVERRIDES)
        if plain and "Content-Security-Policy" not in response and not django_settings.DEBUG:
            response["Content-Security-Policy"] = self._policy
            return response
        return super().process_response(request, response)

    def call(self, request: HttpRequest) -> HttpResponse:
        self.process_request(request)
        response = self.get_response(request)
        return self.process_response(request, response)  # type: ignore[arg-type,return-value]

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        self.process_request(request)
        response = await self.get_response(request)  # type: ignore[misc]
        return self.process_response(request, response)  # type: ignore[return-value]
