"""Staff changes reach open menu sockets: outbox → relay → RabbitMQ → bridge → Redis → socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from ordering import services
from tests.integration.sockets import ws

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(write: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        from django.db import connection

        write()
        connection.close()

    return run


def test_menu_sockets_hear_staff_edits_and_busy_mode(restaurant, menu, run_bridge):
    run_bridge()
    pasta = menu["pasta"]

    async def scenario() -> None:
        menu_ws = ws(f"/ws/menus/{restaurant.pk}/")
        assert (await menu_ws.connect())[0]
        assert (await menu_ws.receive_json_from(timeout=5))["type"] == "menu.snapshot"
        loop = asyncio.get_running_loop()

        # when the staff mark the pasta sold out
        await loop.run_in_executor(
            None,
            _in_thread(
                lambda: services.menu_item_set_available(
                    restaurant_id=restaurant.pk, menu_item_id=pasta.pk, available=False
                )
            ),
        )
        assert await menu_ws.receive_json_from(timeout=10) == {"type": "menu.item", "menu_item_id": pasta.pk}

        # when they pause new orders
        await loop.run_in_executor(
            None, _in_thread(lambda: services.restaurant_set_busy(restaurant_id=restaurant.pk, minutes=15))
        )
        assert await menu_ws.receive_json_from(timeout=10) == {"type": "menu.state", "restaurant_id": restaurant.pk}
        assert await menu_ws.receive_nothing(timeout=0.3)
        await menu_ws.disconnect()

    async_to_sync(scenario)()
