"""Who may do what, over every route of the API and every live socket.

The API's routes are read from its own OpenAPI schema, so a route added later is in the matrix
without anyone remembering to add it: unless it is declared public below, an anonymous call must
be a 401 in the contract's shape. Then each kind of caller (another customer, a customer on a
kitchen route, staff of another restaurant) is tried on what belongs to someone else.
"""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from ordering.services import api_token_issue
from passline.api import api
from tests.factories import OrderFactory, RestaurantFactory, StaffMembershipFactory, UserFactory
from tests.integration.sockets import refusal, ws

JSON = "application/json"

# Callable by anyone: signing up and in, the public catalogue.
PUBLIC = {
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/api/v1/restaurants"),
    ("GET", "/api/v1/restaurants/{restaurant_id}/menu"),
    ("GET", "/api/v1/restaurants/{restaurant_id}/slots"),
}


SCHEMA = api.get_openapi_schema()


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if "allOf" in node:
        return _resolve(node["allOf"][0])
    return node


def _example(node: dict) -> object:
    """A value the schema accepts: the body validation passes, so authorization is what answers."""
    node = _resolve(node)
    if "enum" in node:
        return node["enum"][0]
    if "anyOf" in node:
        return _example(next(n for n in node["anyOf"] if n.get("type") != "null"))
    kind = str(node.get("type"))
    if kind == "object" or "properties" in node:
        return {name: _example(node["properties"][name]) for name in node.get("required", [])}
    if kind == "array":
        return [_example(node["items"])]
    return {"integer": 1, "number": 1, "boolean": True}.get(kind, node.get("example", "1.00"))


def _body(operation: dict) -> object:
    content = operation.get("requestBody", {}).get("content", {}).get(JSON)
    return _example(content["schema"]) if content else {}


def _operations() -> list[tuple[str, str, dict]]:
    schema = SCHEMA
    operations = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            operations.append((method.upper(), path, operation))
    return operations


OPERATIONS = _operations()


def _fill(path: str, value: int) -> str:
    return re.sub(r"\{[^}]+\}", str(value), path)


def _call(client: Client, method: str, path: str, operation: dict | None = None):
    if method not in {"POST", "PUT", "PATCH"}:
        return client.generic(method, path)
    return client.generic(method, path, data=json.dumps(_body(operation or {})), content_type=JSON)


def test_the_matrix_knows_the_api() -> None:
    """The schema is read (a broken read would make every test below vacuous)."""
    paths = {path for _, path, _ in OPERATIONS}
    assert "/api/v1/orders" in paths and "/api/v1/kitchen/{restaurant_id}/orders" in paths
    assert len(OPERATIONS) >= 12


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [(m, p) for m, p, _ in OPERATIONS if (m, p) not in PUBLIC],
    ids=[f"{m} {p}" for m, p, _ in OPERATIONS if (m, p) not in PUBLIC],
)
def test_every_route_that_is_not_public_refuses_an_anonymous_caller(method: str, path: str) -> None:
    response = _call(Client(), method, _fill(path, 1))
    assert response.status_code == 401, (method, path, response.content)
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [(m, p, o) for m, p, o in OPERATIONS if (m, p) not in PUBLIC],
    ids=[f"{m} {p}" for m, p, _ in OPERATIONS if (m, p) not in PUBLIC],
)
def test_every_route_that_is_not_public_documents_its_authentication(method: str, path: str, operation: dict) -> None:
    assert operation.get("security"), f"{method} {path} declares no security scheme"


@pytest.fixture
def two_customers_and_two_kitchens(db, menu, restaurant):
    owner, stranger = UserFactory(), UserFactory()
    order = OrderFactory(customer=owner, dish=menu["pizza"], paid=True)
    other_restaurant = RestaurantFactory(name="Elsewhere")
    cook_here = StaffMembershipFactory(restaurant=restaurant).user
    cook_elsewhere = StaffMembershipFactory(restaurant=other_restaurant).user
    return {
        "owner": owner,
        "stranger": stranger,
        "order": order,
        "restaurant": restaurant,
        "cook_here": cook_here,
        "cook_elsewhere": cook_elsewhere,
    }


def _bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token_issue(user=user)}"}


@pytest.mark.django_db
def test_another_customers_order_does_not_exist_for_a_customer(two_customers_and_two_kitchens) -> None:
    world = two_customers_and_two_kitchens
    order_id = world["order"].pk
    client = Client(headers=_bearer(world["stranger"]))
    for method, path, operation in OPERATIONS:
        if "{order_id}" not in path or "/kitchen/" in path:
            continue
        response = _call(client, method, _fill(path, order_id), operation)
        assert response.status_code == 404, (method, path, response.content)
        assert response.json()["error"]["code"] == "not_found"
    # and their own list does not show it
    assert Client(headers=_bearer(world["stranger"])).get("/api/v1/orders").json() == []
    world["order"].refresh_from_db()
    assert world["order"].status == "paid"


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "stranger", "cook_elsewhere"])
def test_kitchen_routes_refuse_everyone_but_that_restaurants_staff(two_customers_and_two_kitchens, who: str) -> None:
    world = two_customers_and_two_kitchens
    client = Client(headers=_bearer(world[who]))
    kitchen = [(m, p, o) for m, p, o in OPERATIONS if p.startswith("/api/v1/kitchen/")]
    assert kitchen
    for method, path, operation in kitchen:
        target = path.replace("{restaurant_id}", str(world["restaurant"].pk))
        target = _fill(target, world["order"].pk)
        response = _call(client, method, target, operation)
        # 403 for a route of a restaurant one is not staff of; 404 where even the order's existence
        # is not theirs to learn; never a success
        assert response.status_code in {403, 404}, (who, method, path, response.content)
        assert response.json()["error"]["code"] in {"forbidden", "not_found", "not_staff"}, response.content
    world["order"].refresh_from_db()
    assert world["order"].status == "paid"


@pytest.mark.django_db
def test_the_restaurants_own_staff_pass_the_same_kitchen_routes(two_customers_and_two_kitchens) -> None:
    world = two_customers_and_two_kitchens
    client = Client(headers=_bearer(world["cook_here"]))
    response = client.get(f"/api/v1/kitchen/{world['restaurant'].pk}/orders")
    assert response.status_code == 200
    assert [ticket["id"] for ticket in response.json()] == [world["order"].pk]


# --- live sockets ----------------------------------------------------------------------------

SOCKET_MATRIX = [
    # (route, caller, close code or None when let in)
    ("/ws/orders/{order}/", None, 4401),
    ("/ws/orders/{order}/", "stranger", 4403),
    ("/ws/orders/{order}/", "cook_elsewhere", 4403),
    ("/ws/orders/{order}/", "owner", None),
    ("/ws/orders/{order}/", "cook_here", None),
    ("/ws/kitchen/{restaurant}/", None, 4401),
    ("/ws/kitchen/{restaurant}/", "owner", 4403),
    ("/ws/kitchen/{restaurant}/", "cook_elsewhere", 4403),
    ("/ws/kitchen/{restaurant}/", "cook_here", None),
    ("/ws/me/", None, 4401),
    ("/ws/me/", "owner", None),
    ("/ws/dashboard/", None, 4401),
    ("/ws/dashboard/", "owner", 4403),
    ("/ws/dashboard/{restaurant}/", "cook_elsewhere", 4403),
    ("/ws/menus/{restaurant}/", None, None),
    ("/ws/boards/{restaurant}/", None, None),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("route", "caller", "code"), SOCKET_MATRIX, ids=[f"{r} {c}" for r, c, _ in SOCKET_MATRIX])
def test_each_socket_lets_in_exactly_who_may_watch(two_customers_and_two_kitchens, route, caller, code) -> None:
    world = two_customers_and_two_kitchens
    path = route.format(order=world["order"].pk, restaurant=world["restaurant"].pk)
    token = api_token_issue(user=world[caller]) if caller else None

    async def scenario() -> None:
        socket = ws(path, token=token)
        if code is not None:
            assert await refusal(socket) == code
            return
        connected, _ = await socket.connect()
        assert connected
        if route != "/ws/me/":  # the customer's own feed says nothing until something happens
            first = await socket.receive_json_from(timeout=5)
            assert first["type"].endswith("snapshot"), first
        else:
            assert await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()

    async_to_sync(scenario)()
