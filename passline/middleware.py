"""HTTP middleware of the project."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

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
