"""Readiness (``/readyz``) and the operations page for staff (``/ops/``, kept live by
static/js/ops.js polling ``/ops/status.json``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from operations import readiness, status

# How often the page asks for a new snapshot.
POLL_MS = 2500


def staff_only(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Signed out: to the login page. Signed in without is_staff: 403."""

    @wraps(view)
    def check(request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("The operations page is for staff.")
        return view(request)

    return check


@require_safe
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 with every check, or 503 naming the failing ones and why."""
    answer = readiness.readiness()
    response = JsonResponse(answer.as_json(), status=200 if answer.ready else 503)
    if not answer.ready:
        response["Retry-After"] = "5"
    return response


@require_safe
@staff_only
def ops_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "operations/ops.html",
        {"snapshot": status.snapshot(), "poll_ms": POLL_MS, "status_url": reverse("ops_status")},
    )


@require_safe
@never_cache
@staff_only
def ops_status(request: HttpRequest) -> JsonResponse:
    return JsonResponse(status.snapshot())
