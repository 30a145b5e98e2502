"""The kitchen's own actions on the real MariaDB: crossing dishes off, the priority flag and
recall, through the services and the JSON API; each is announced through the outbox."""

from __future__ import annotations

import datetime
import json
import threading

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from bus.models import OutboxMessage
from ordering import services
from ordering.events import KITCHEN_TICKET_CHANGED, ORDER_STATUS_CHANGED
from ordering.exceptions import InvalidTransition, NotFound, PermissionDenied
from ordering.models import Order, OrderEvent
from tests.factories import (
    MenuCategoryFactory,
    MenuItemFactory,
    OrderFactory,
    RestaurantFactory,
    StaffMembershipFactory,
)

pytestmark = pytest.mark.django_db
JSON = "application/json"


@pytest.fixture
def cook(restaurant):
    return StaffMembershipFactory(restaurant=restaurant).user


@pytest.fixture
def stranger_cook():
    return StaffMembershipFactory(restaurant=RestaurantFactory()).user


def paid(customer, *items) -> Order:
    """A paid order of one of each of ``items``."""
    return OrderFactory(customer=customer, items=[(item, 1) for item in items], paid=True)


def move(order: Order, cook, *statuses: str) -> Order:
    for status in statuses:
        order = services.order_transition_by_staff(order_id=order.pk, user=cook, to=status)
    return order


def outbox(event) -> list[dict]:
    return [json.loads(m.body)["payload"] for m in OutboxMessage.objects.filter(type=event.name).order_by("id")]


def api(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=user)}"})


# --- crossing dishes off ---------------------------------------------------------------------


def test_a_dish_is_crossed_off_once_and_every_screen_is_told(cook, customer, restaurant, menu):
    order = move(paid(customer, menu["pizza"], menu["soup"]), cook, "accepted")
    revision = order.ticket_revision

    services.order_item_mark_done(order_id=order.pk, menu_item_id=menu["pizza"].pk, user=cook)
    services.order_item_mark_done(order_id=order.pk, menu_item_id=menu["pizza"].pk, user=cook)  # a second tap

    order.refresh_from_db()
    lines = {line.menu_item_id: line.done_at for line in order.lines.all()}
    assert lines[menu["pizza"].pk] is not None and lines[menu["soup"].pk] is None
    assert order.ticket_revision == revision + 1  # the repeated tap changed nothing
    assert order.version == 3  # not a status change
    assert outbox(KITCHEN_TICKET_CHANGED) == [
        {
            "order_id": order.pk,
            "restaurant_id": restaurant.pk,
            "revision": revision + 1,
            "change": "item_done",
            "menu_item_id": menu["pizza"].pk,
        }
    ]

    services.order_item_mark_done(order_id=order.pk, menu_item_id=menu["pizza"].pk, user=cook, done=False)
    order.refresh_from_db()
    assert order.lines.get(menu_item_id=menu["pizza"].pk).done_at is None
    assert [p["change"] for p in outbox(KITCHEN_TICKET_CHANGED)] == ["item_done", "item_undone"]


def test_dishes_are_crossed_off_only_while_cooking_and_only_by_the_restaurants_staff(
    cook, stranger_cook, customer, restaurant, menu
):
    order = paid(customer, menu["pizza"])
    with pytest.raises(InvalidTransition):
        services.order_item_mark_done(order_id=order.pk, menu_item_id=menu["pizza"].pk, user=cook)
    move(order, cook, "accepted")
    with pytest.raises(PermissionDenied):
        services.order_item_mark_done(order_id=order.pk, menu_item_id=menu["pizza"].pk, user=stranger_cook)
    with pytest.raises(NotFound):
        services.order_item_mark_done(order_id=order.pk, menu_item_id=menu["pasta"].pk, user=cook)
    assert not OutboxMessage.objects.filter(type=KITCHEN_TICKET_CHANGED.name).exists()


def test_concurrent_taps_on_different_dishes_each_raise_the_revision(
    transactional_db, cook, customer, restaurant, menu
):
    order = move(paid(customer, *menu.values()), cook, "accepted")
    start = order.ticket_revision
    barrier = threading.Barrier(3)

    def tap(item) -> None:
        barrier.wait()
        services.order_item_mark_done(order_id=order.pk, menu_item_id=item.pk, user=cook)
        connection.close()

    threads = [threading.Thread(target=tap, args=(item,)) for item in menu.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    order.refresh_from_db()
    assert order.ticket_revision == start + 3
    assert sorted(p["revision"] for p in outbox(KITCHEN_TICKET_CHANGED)) == [start + 1, start + 2, start + 3]
    assert all(line.done_at for line in order.lines.all())


# --- priority --------------------------------------------------------------------------------


def test_the_priority_flag_is_set_once_on_open_tickets_only(cook, customer, restaurant, menu):
    order = paid(customer, menu["pizza"])
    services.order_set_priority(order_id=order.pk, user=cook, priority=True)
    services.order_set_priority(order_id=order.pk, user=cook, priority=True)
    order.refresh_from_db()
    assert order.priority is True
    assert [p["change"] for p in outbox(KITCHEN_TICKET_CHANGED)] == ["priority"]

    move(order, cook, "accepted", "preparing", "ready", "delivered")
    with pytest.raises(InvalidTransition):
        services.order_set_priority(order_id=order.pk, user=cook, priority=False)


# --- recall ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "back_to"),
    [
        (["accepted", "preparing"], "accepted"),
        (["accepted", "preparing", "ready"], "preparing"),
        (["accepted", "preparing", "ready", "out_for_delivery"], "ready"),
        (["accepted", "preparing", "ready", "delivered"], "ready"),
        (["accepted", "preparing", "ready", "out_for_delivery", "delivered"], "out_for_delivery"),
    ],
)
def test_recall_undoes_the_kitchens_last_move_as_a_new_version(cook, customer, restaurant, menu, path, back_to):
    order = move(paid(customer, menu["pizza"]), cook, *path)

    order = services.order_recall(order_id=order.pk, user=cook)

    assert order.status == back_to
    assert order.version == 2 + len(path) + 1
    step = OrderEvent.objects.get(order=order, version=order.version)
    assert (step.from_status, step.status, step.actor_kind) == (path[-1], back_to, "staff")
    assert step.reason.startswith("Recalled by the kitchen")
    assert outbox(ORDER_STATUS_CHANGED)[-1]["status"] == back_to
    # and the recall itself is not recalled: the screen moves the order on again instead
    with pytest.raises(InvalidTransition):
        services.order_recall(order_id=order.pk, user=cook)


def test_recall_refuses_what_is_not_a_kitchen_move_or_too_old(
    cook, stranger_cook, customer, restaurant, menu, settings
):
    order = paid(customer, menu["pizza"])
    with pytest.raises(InvalidTransition):  # paid came from billing, not the kitchen
        services.order_recall(order_id=order.pk, user=cook)
    order = move(order, cook, "accepted")
    with pytest.raises(InvalidTransition):  # accepting is not undone: the deadline is settled
        services.order_recall(order_id=order.pk, user=cook)
    order = move(order, cook, "preparing")
    with pytest.raises(PermissionDenied):
        services.order_recall(order_id=order.pk, user=stranger_cook)
    OrderEvent.objects.filter(order=order, version=order.version).update(
        at=timezone.now() - datetime.timedelta(seconds=settings.KITCHEN_RECALL_SECONDS + 1)
    )
    with pytest.raises(InvalidTransition):
        services.order_recall(order_id=order.pk, user=cook)
    order.refresh_from_db()
    assert (order.status, order.version) == ("preparing", 4)


def test_a_rejection_is_final(cook, customer, restaurant, menu):
    order = move(paid(customer, menu["pizza"]), cook, "rejected")
    with pytest.raises(InvalidTransition):
        services.order_recall(order_id=order.pk, user=cook)


# --- the API ---------------------------------------------------------------------------------


def test_the_kitchen_api_crosses_off_flags_and_recalls(cook, customer, restaurant, menu):
    order = move(paid(customer, menu["pizza"], menu["soup"]), cook, "accepted")
    client = api(cook)

    done = client.post(
        f"/api/v1/kitchen/orders/{order.pk}/items/{menu['soup'].pk}/done", {"done": True}, content_type=JSON
    )
    assert done.status_code == 200
    assert {i["name"]: i["done"] for i in done.json()["items"]} == {"Pizza": False, "Soup": True}

    flagged = client.post(f"/api/v1/kitchen/orders/{order.pk}/priority", {"priority": True}, content_type=JSON)
    assert (flagged.status_code, flagged.json()["priority"]) == (200, True)

    started = client.post(f"/api/v1/kitchen/orders/{order.pk}/transition", {"to": "preparing"}, content_type=JSON)
    assert started.json()["recall"]["to"] == "accepted"
    recalled = client.post(f"/api/v1/kitchen/orders/{order.pk}/recall", content_type=JSON)
    assert recalled.status_code == 200
    body = recalled.json()
    assert (body["status"], body["version"], body["next"], body["recall"]) == ("accepted", 5, ["preparing"], None)
    assert body["revision"] > flagged.json()["revision"]

    again = client.post(f"/api/v1/kitchen/orders/{order.pk}/recall", content_type=JSON)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_transition"


def test_the_kitchen_api_refuses_others_and_bad_input(cook, stranger_cook, customer, restaurant, menu):
    order = move(paid(customer, menu["pizza"]), cook, "accepted")
    for user, status in ((stranger_cook, 403), (customer, 403)):
        for path, body in (
            (f"items/{menu['pizza'].pk}/done", {"done": True}),
            ("priority", {"priority": True}),
            ("recall", None),
        ):
            response = api(user).post(f"/api/v1/kitchen/orders/{order.pk}/{path}", body, content_type=JSON)
            assert response.status_code == status, (path, response.content)
            assert response.json()["error"]["code"] == "forbidden"
    assert Client().post(f"/api/v1/kitchen/orders/{order.pk}/recall").status_code == 401
    assert (
        api(cook)
        .post(f"/api/v1/kitchen/orders/{order.pk}/priority", {"priority": "very"}, content_type=JSON)
        .status_code
        == 422
    )
    assert (
        api(cook).post(f"/api/v1/kitchen/orders/{order.pk}/items/999999/done", {}, content_type=JSON).status_code == 404
    )
    assert api(cook).post("/api/v1/kitchen/orders/999999/recall").status_code == 404
    assert not OutboxMessage.objects.filter(type=KITCHEN_TICKET_CHANGED.name).exists()


def test_tickets_carry_their_station_and_the_restaurants_target(cook, customer, restaurant, menu):
    drinks = MenuCategoryFactory(restaurant=restaurant, name="Drinks", station="drinks")
    lemonade = MenuItemFactory(category=drinks, name="Lemonade")
    restaurant.prep_time_minutes = 12
    restaurant.save()
    paid(customer, menu["pizza"], lemonade)

    ticket = api(cook).get(f"/api/v1/kitchen/{restaurant.pk}/orders").json()[0]

    assert {i["name"]: i["station"] for i in ticket["items"]} == {"Pizza": "kitchen", "Lemonade": "drinks"}
    assert (ticket["target_minutes"], ticket["priority"], ticket["next"]) == (12, False, ["accepted", "rejected"])
    assert ticket["paid_at"] is not None and ticket["recall"] is None
