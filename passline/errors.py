"""What the web answers when something fails: the site's 500 and 503 pages, and which errors
are the database being briefly unavailable (503, worth a retry) rather than a bug (500).

A request that loses its database connection (a restart, a fail-over, a killed connection),
cannot open one, or gives up on a lock (lock wait timeout, deadlock) changed nothing: its
transaction rolled back. It answers 503 with ``Retry-After``, and the client's retry (under
the same ``Idempotency-Key`` for a POST) is safe. Every other error stays a 500.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

logger = logging.getLogger(__name__)

# Seconds a client should wait: a dropped connection is replaced at once, a restarting
# database takes a few seconds.
RETRY_AFTER_SECONDS = 5

API_PREFIX = "/api/v1/"
UNAVAILABLE_CODE = "unavailable"
UNAVAILABLE_MESSAGE = (
    "The service is briefly unavailable and nothing was changed. Try again in a few seconds; "
    "a request with the same Idempotency-Key is safe to repeat."
)

# MariaDB server and client error numbers that mean "the database cannot answer now", not
# "this request is wrong": the connection refused, gone away, lost mid-query, killed or
# timed out idle; the server shutting down or out of connections; a lock given up on (the
# transaction was rolled back, so a retry starts clean); a statement over max_statement_time;
# a write refused by a read-only server (the old primary, fenced by a promotion: the next
# connection finds the new one).
UNAVAILABLE_ERRORS = frozenset(
    {
        2002,
        2003,
        2005,
        2006,
        2013,
        2055,  # client: cannot connect, gone away, lost
        1927,
        4031,
        1053,
        1077,  # killed, idle timeout, server shutdown, normal shutdown
        1040,
        1203,
        1226,  # too many connections, per user, resource limit
        1205,
        1213,  # lock wait timeout, deadlock
        1969,  # max_statement_time exceeded
        1290,  # read-only server (fenced after a failover)
    }
)


def database_unavailable(error: BaseException | None) -> bool:
    """Is ``error`` the database being briefly unavailable, so that a retry may succeed?"""
    if isinstance(error, InterfaceError):
        # The driver's "connection already closed": the connection died under the request.
        return True
    if isinstance(error, OperationalError):
        number = error.args[0] if error.args else None
        return isinstance(number, int) and number in UNAVAILABLE_ERRORS
    return False


def unavailable_json() -> JsonResponse:
    """The API's 503 in the contract's error shape."""
    response = JsonResponse({"error": {"code": UNAVAILABLE_CODE, "message": UNAVAILABLE_MESSAGE}}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: a 503 page (or JSON under the API) when the database is unavailable,
    else the 500 page. Django calls it while the exception is being handled."""
    error = sys.exc_info()[1]
    api = request.path.startswith(API_PREFIX)
    if database_unavailable(error):
        logger.warning("database unavailable on %s %s: %s", request.method, request.path, error)
        if api:
            return unavailable_json()
        # Rendered without the request: its context (the user, the wallet in the header)
        # would ask the database that just failed.
        response = HttpResponse(loader.render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if api:
        body = {"code": "internal_error", "message": "Something went wrong on our side; it has been logged."}
        return JsonResponse({"error": body}, status=500)
    return HttpResponse(loader.render_to_string("500.html"), status=500)
