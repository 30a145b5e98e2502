"""HTTP middleware of the project."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from bus.correlation import clean_correlation_id, correlation_context

REQUEST_ID_HEADER = "X-Request-ID"


class CorrelationIdMiddleware:
    """Give every request a correlation id (the caller's ``X-Request-ID`` when it is sane).

    The id is echoed back in the response header, set for the request's logging and
    copied into every event the request causes.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if self.is_async:
            return self.__acall__(request)
        correlation_id = clean_correlation_id(request.headers.get(REQUEST_ID_HEADER))
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        with correlation_context(correlation_id):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = correlation_id  # type: ignore[index]
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        correlation_id = clean_correlation_id(request.headers.get(REQUEST_ID_HEADER))
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        with correlation_context(correlation_id):
            response = await self.get_response(request)  # type: ignore[misc]
        response[REQUEST_ID_HEADER] = correlation_id
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, able to run in the async middleware chain.

    WhiteNoise's own middleware is sync-only: under ASGI Django then runs everything above it
    on a thread, hops back to the event loop for what is below it, and to a thread again for
    the view — on every request, static or not. Here a request for anything but a static file
    goes straight on; a static file is served as WhiteNoise serves it, off the event loop.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response, settings=django_settings):  # type: ignore[no-untyped-def]
        super().__init__(get_response, settings=settings)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if self.is_async:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)  # type: ignore[misc]
