"""Who may look at the dashboards: pages and sockets for a restaurant's staff and operators only,
and a cook who leaves is closed out at the next sync."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission
from django.test import Client

from ordering.services import api_token_issue
from tests.factories import (
    RestaurantFactory,
    StaffMembershipFactory,
    UserFactory,
)
from tests.integration.sockets import refusal, ws

pytestmark = pytest.mark.django_db(transaction=True)


def test_pages_and_sockets_are_for_the_restaurants_staff_and_operators(customer):
    # given two restaurants with a cook each, a cook of both, an operator and a customer
    first, second = RestaurantFactory(), RestaurantFactory()
    cook = StaffMembershipFactory(restaurant=first).user
    both = StaffMembershipFactory(restaurant=first).user
    StaffMembershipFactory(restaurant=second, user=both)
    operator = UserFactory(is_staff=True, is_superuser=True)

    def get(user, path: str):  # type: ignore[no-untyped-def]
        client = Client()
        if user is not None:
            client.force_login(user)
        return client.get(path)

    # pages: a visitor is sent to log in; staff of another restaurant and customers are refused
    assert get(None, f"/dashboard/{first.pk}/").status_code == 302
    assert get(None, "/dashboard/")["Location"].startswith("/login/")
    assert get(cook, f"/dashboard/{second.pk}/").status_code == 403
    assert get(customer, "/dashboard/").status_code == 403
    assert get(customer, f"/dashboard/{first.pk}/").status_code == 403
    assert get(operator, "/dashboard/9999999/").status_code == 404
    # a cook of one restaurant goes straight to it; a cook of two chooses; an operator sees all
    assert get(cook, "/dashboard/")["Location"] == f"/dashboard/{first.pk}/"
    page = get(cook, f"/dashboard/{first.pk}/")
    assert page.status_code == 200 and f'data-socket="/ws/dashboard/{first.pk}/"' in page.content.decode()
    assert 'href="/dashboard/"' in page.content.decode()  # the nav's Dashboard link
    choice = get(both, "/dashboard/").content.decode()
    assert f"/dashboard/{first.pk}/" in choice and f"/dashboard/{second.pk}/" in choice
    overview = get(operator, "/dashboard/").content.decode()
    assert 'data-socket="/ws/dashboard/"' in overview and f'href="/dashboard/{second.pk}/"' in overview
    assert get(operator, f"/dashboard/{second.pk}/").status_code == 200
    # an admin-site user sees every restaurant only when given the permission
    clerk = UserFactory(is_staff=True)
    assert get(clerk, "/dashboard/").status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_all_restaurants"))
    clerk = type(clerk).objects.get(pk=clerk.pk)  # a fresh permission cache
    assert 'data-socket="/ws/dashboard/"' in get(clerk, "/dashboard/").content.decode()
    assert 'href="/dashboard/"' in get(clerk, "/").content.decode()  # and the nav links to it
    # the vendored chart library is served from static/, no CDN anywhere
    assert "/static/vendor/uplot/uPlot.iife.min.js" in overview and "cdn" not in overview.lower()

    tokens = {user.pk: api_token_issue(user=user) for user in (cook, customer, operator)}

    async def sockets() -> None:
        assert await refusal(ws(f"/ws/dashboard/{first.pk}/")) == 4401
        assert await refusal(ws(f"/ws/dashboard/{second.pk}/", tokens[cook.pk])) == 4403
        assert await refusal(ws("/ws/dashboard/", tokens[cook.pk])) == 4403
        assert await refusal(ws(f"/ws/dashboard/{first.pk}/", tokens[customer.pk])) == 4403
        assert await refusal(ws("/ws/dashboard/9999999/", tokens[operator.pk])) == 4403
        for path, token in (
            (f"/ws/dashboard/{first.pk}/", tokens[cook.pk]),
            ("/ws/dashboard/", tokens[operator.pk]),
            (f"/ws/dashboard/{second.pk}/", tokens[operator.pk]),
        ):
            socket = ws(path, token)
            assert (await socket.connect())[0]
            frame = await socket.receive_json_from(timeout=5)
            assert frame["type"] == "dashboard.figures" and frame["figures"]["revenue_net"] == "0.00"
            await socket.send_json_to({"type": "ping"})
            assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
            await socket.disconnect()

    async_to_sync(sockets)()


def test_a_cook_who_leaves_is_closed_out_at_the_next_sync():
    cook = StaffMembershipFactory().user
    restaurant_id = cook.staff_memberships.get().restaurant_id
    token = api_token_issue(user=cook)

    async def scenario() -> None:
        socket = ws(f"/ws/dashboard/{restaurant_id}/", token)
        assert (await socket.connect())[0]
        await socket.receive_json_from(timeout=5)
        await asyncio.to_thread(lambda: cook.staff_memberships.all().delete())
        await socket.send_json_to({"type": "sync"})
        output = await socket.receive_output(timeout=5)
        assert (output["type"], output.get("code")) == ("websocket.close", 4403)
        await socket.disconnect()

    async_to_sync(scenario)()
