"""The kitchen screen: pages for a restaurant's staff. The screen itself is rendered by
static/js/kitchen.js from the kitchen socket's frames; these views check who may open it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from ordering import selectors
from ordering.exceptions import NotFound
from ordering.status import STATUS_LABELS
from passline.http import AuthenticatedHttpRequest


@login_required
def kitchen_index(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The kitchens the user works: straight to the screen when there is one."""
    restaurants = list(selectors.staff_restaurants(user=request.user))
    if len(restaurants) == 1:
        return redirect("kitchen_screen", restaurant_id=restaurants[0].pk)
    if not restaurants:
        raise PermissionDenied("Only restaurant staff can open a kitchen screen.")
    return render(request, "kitchen/index.html", {"restaurants": restaurants})


@login_required
def kitchen_screen(request: AuthenticatedHttpRequest, restaurant_id: int) -> HttpResponse:
    """One restaurant's kitchen screen, for its staff; ``?station=grill&station=bar`` shows only those."""
    try:
        restaurant = selectors.restaurant_get(restaurant_id=restaurant_id)
    except NotFound:
        raise Http404("No such restaurant") from None
    if not selectors.is_restaurant_staff(user=request.user, restaurant_id=restaurant.pk):
        raise PermissionDenied("Only this restaurant's staff can open its kitchen screen.")
    stations = selectors.kitchen_stations(restaurant_id=restaurant.pk)
    chosen = [s for s in request.GET.getlist("station") if s in stations]
    return render(
        request,
        "kitchen/screen.html",
        {
            "restaurant": restaurant,
            "stations": stations,
            "chosen": chosen,
            "labels": {s.value: label for s, label in STATUS_LABELS.items()},
            "recall_seconds": settings.KITCHEN_RECALL_SECONDS,
            "accept_undo_seconds": settings.KITCHEN_ACCEPT_UNDO_SECONDS,
            "other_kitchens": selectors.staff_restaurants(user=request.user).exclude(pk=restaurant.pk),
        },
    )
