"""The staff dashboard's pages: the figures rendered by the server, then kept live by
static/js/dashboard.js over ``/ws/dashboard/…``."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from analytics import selectors
from ordering.exceptions import NotFound
from ordering.models import Restaurant
from ordering.selectors import restaurant_get
from passline.http import AuthenticatedHttpRequest


@login_required
def dashboard_index(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Operators: every restaurant. Staff: their restaurant's dashboard, or a choice of them."""
    if selectors.sees_all_restaurants(user=request.user):
        return _render(request, restaurant=None)
    restaurants = selectors.dashboard_restaurants(user=request.user)
    if len(restaurants) == 1:
        return redirect("dashboard_restaurant", restaurant_id=restaurants[0].pk)
    if not restaurants:
        raise PermissionDenied("Only restaurant staff can open a dashboard.")
    return render(request, "analytics/index.html", {"restaurants": restaurants})


@login_required
def dashboard_restaurant(request: AuthenticatedHttpRequest, restaurant_id: int) -> HttpResponse:
    """One restaurant's dashboard, for its staff and for operators."""
    try:
        restaurant = restaurant_get(restaurant_id=restaurant_id)
    except NotFound:
        raise Http404("No such restaurant") from None
    if not selectors.dashboard_allowed(user=request.user, restaurant_id=restaurant.pk):
        raise PermissionDenied("Only this restaurant's staff can open its dashboard.")
    return _render(request, restaurant=restaurant)


def _render(request: AuthenticatedHttpRequest, *, restaurant: Restaurant | None) -> HttpResponse:
    figures = selectors.dashboard_figures(restaurant_id=restaurant.pk if restaurant else None)
    return render(
        request,
        "analytics/dashboard.html",
        {
            "restaurant": restaurant,
            "figures": figures,
            "figures_json": figures.as_json(),
            "socket_path": f"/ws/dashboard/{restaurant.pk}/" if restaurant else "/ws/dashboard/",
            "other_restaurants": [
                r
                for r in selectors.dashboard_restaurants(user=request.user)
                if restaurant is None or r.pk != restaurant.pk
            ],
            "sees_all": selectors.sees_all_restaurants(user=request.user),
            "currency_symbol": settings.CURRENCY_SYMBOL,
        },
    )
