"""The JSON API when the database goes away mid-request: 503 with Retry-After in the error
shape, and a retry under the same Idempotency-Key places the order once. A real bug stays 500."""

from __future__ import annotations

import json
from contextlib import closing

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, connections
from django.test import Client

from bus.models import OutboxMessage
from ordering import selectors, services
from ordering.models import MenuItem, Order, OrderEvent
from passline.asgi import application
from tests.integration.db_outage import connection_killed_before, kill, second_connection
from tests.support import asgi_get

pytestmark = pytest.mark.django_db(transaction=True)
JSON = "application/json"


def bearer(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=user)}"})


def place(client: Client, restaurant, item, key: str):
    body = {
        "restaurant_id": restaurant.pk,
        "items": [{"menu_item_id": item.pk, "quantity": 2}],
        "delivery_address": "12 Baker Street",
    }
    return client.post("/api/v1/orders", body, content_type=JSON, headers={"Idempotency-Key": key})


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) > 0
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert "Idempotency-Key" in error["message"]


def test_connection_lost_while_placing_is_503_and_the_retry_places_one_order(customer, restaurant, menu):
    client = bearer(customer)
    # when: the connection is killed just before the order's last write (its outbox event)
    with connection_killed_before(r"INSERT INTO `bus_outboxmessage`") as killed:
        lost = place(client, restaurant, menu["soup"], key="lost-1")
    # then: a 503 in the error shape, and the half-done transaction left nothing behind
    assert killed
    assert_unavailable(lost)
    assert (Order.objects.count(), OrderEvent.objects.count(), OutboxMessage.objects.count()) == (0, 0, 0)
    assert MenuItem.objects.get(pk=menu["soup"].pk).remaining_today == 5

    # when: the client retries with the same key, twice
    retried = place(client, restaurant, menu["soup"], key="lost-1")
    again = place(client, restaurant, menu["soup"], key="lost-1")

    # then: one order, its stock taken once, the second retry a replay of it
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == retried.json()["id"]
    assert Order.objects.filter(customer=customer).count() == 1
    assert MenuItem.objects.get(pk=menu["soup"].pk).remaining_today == 3


def test_connection_lost_on_a_read_is_503(customer, restaurant, menu):
    client = bearer(customer)
    with connection_killed_before(r"FROM `ordering_order`"):
        response = client.get("/api/v1/orders")
    assert_unavailable(response)
    # and the next request is served on a new connection
    assert client.get("/api/v1/orders").status_code == 200


def test_a_lock_wait_timeout_is_503_and_the_retry_places_one_order(customer, restaurant, menu):
    client = bearer(customer)
    # given: another transaction holds the soup's row lock longer than the request may wait
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
    holder = second_connection()
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM ordering_menuitem WHERE id = %s FOR UPDATE", [menu["soup"].pk])
        # when
        waited = place(client, restaurant, menu["soup"], key="locked-1")
        # then
        assert_unavailable(waited)
        assert not Order.objects.exists()
    finally:
        holder.rollback()
        holder.close()
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = DEFAULT")

    retried = place(client, restaurant, menu["soup"], key="locked-1")
    assert retried.status_code == 201
    assert Order.objects.filter(customer=customer).count() == 1


def test_a_database_error_that_is_a_bug_stays_a_500(customer, monkeypatch):
    # given: a query the database refuses (an unknown column: an OperationalError in MariaDB's
    # driver, but one no retry will cure)
    def broken(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM ordering_order")

    monkeypatch.setattr(selectors, "customer_orders", broken)

    response = bearer(customer).get("/api/v1/orders")

    assert response.status_code == 500
    assert "Retry-After" not in response
    assert response.json()["error"]["code"] == "internal_error"


# Between two requests -----------------------------------------------------------------------


async def _request(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    return await asgi_get(application, path, headers)


def test_a_connection_killed_between_requests_is_replaced_before_the_next_one(customer):
    # given: a web thread that keeps its connection between requests (passline/threads.py)
    token = services.api_token_issue(user=customer)
    headers = [(b"authorization", f"Bearer {token}".encode())]
    executors = application.application_mapping["http"].executors

    def held() -> int | None:
        return connection.connection.thread_id() if connection.connection is not None else None

    try:
        first, _ = async_to_sync(_request)("/api/v1/wallet", headers)
        kept = [executor.submit(held).result() for executor in executors]
        assert first == 200 and any(kept)

        # when: every connection the web threads hold is killed while they are idle
        for connection_id in filter(None, kept):
            kill(connection_id)
        status, body = async_to_sync(_request)("/api/v1/wallet", headers)

        # then: CONN_HEALTH_CHECKS found the dead connection at the request's first query and
        # opened a new one, so the request never saw it
        assert status == 200, body
        assert json.loads(body)["balance"] == "0.00"
        assert [executor.submit(held).result() for executor in executors] != kept
    finally:
        for executor in executors:
            executor.submit(connections.close_all).result()


def test_the_application_user_can_kill_its_own_connections():
    # what the tests above rely on, said once: no administrator is needed to drop a connection
    with closing(second_connection()) as victim:
        kill(victim.thread_id())
