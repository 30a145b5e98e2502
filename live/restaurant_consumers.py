"""The live sockets of a restaurant: its kitchen screen (staff only), and its public menu and
pick-up board. The base class, its join-then-read rule and the close codes: live/consumers.py."""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from live.consumers import CLOSE_NOT_FOUND, LiveConsumer, StaffScreen, log_push, unseen_frames, update_frame_of
from live.groups import board_group, kitchen_group, menu_group
from ordering.api_schemas import kitchen_ticket_out
from ordering.exceptions import NotFound
from ordering.selectors import (
    is_restaurant_staff,
    kitchen_open_orders,
    kitchen_recent_orders,
    menu_items,
    pickup_board_orders,
    restaurant_get,
)


@database_sync_to_async
def _is_staff(user, restaurant_id: int) -> bool:
    return is_restaurant_staff(user=user, restaurant_id=restaurant_id)


@database_sync_to_async
def _kitchen_snapshot(restaurant_id: int) -> dict[str, Any]:
    return {
        "type": "kitchen.snapshot",
        "orders": [kitchen_ticket_out(order) for order in kitchen_open_orders(restaurant_id=restaurant_id)],
        # Closed in the last minutes: still on screen, where a mistaken move can be recalled.
        "recent": [kitchen_ticket_out(order) for order in kitchen_recent_orders(restaurant_id=restaurant_id)],
        # Screens time tickets against the server's clock, not the tablet's.
        "server_time": timezone.now(),
    }


class KitchenConsumer(StaffScreen):
    """A restaurant's open tickets and every change of its orders, for its staff only.

    Frames: the contract's ``kitchen.snapshot`` and ``order.update``, and ``kitchen.ticket``
    with the whole ticket whenever anything on it changes (status, a dish crossed off, the
    priority flag). A screen can ask for a fresh snapshot with ``{"type": "sync"}``.
    """

    restaurant_id: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The newest version of each order and revision of each ticket sent on this socket.
        self.versions: dict[int, int] = {}
        self.revisions: dict[int, int] = {}

    def screen_group(self) -> str:
        return kitchen_group(self.restaurant_id)

    async def send_snapshot(self) -> None:
        snapshot = await _kitchen_snapshot(self.restaurant_id)
        for ticket in snapshot["orders"] + snapshot["recent"]:
            self.versions[ticket["id"]] = max(self.versions.get(ticket["id"], 0), ticket["version"])
            self.revisions[ticket["id"]] = max(self.revisions.get(ticket["id"], 0), ticket["revision"])
        await self.send_json(snapshot)

    async def still_allowed(self) -> bool:
        # Someone who no longer works there stops seeing the screen.
        return await _is_staff(self.scope["user"], self.restaurant_id)

    async def kitchen_ticket(self, event: dict[str, Any]) -> None:
        """A group message from the bridge: a status change (with its version) and/or the ticket,
        encoded once by the bridge for every screen."""
        order_id = event["order_id"]
        if "version" in event:
            await self._send_updates(order_id, event)
        revision = event.get("ticket_revision")
        if revision is not None and revision > self.revisions.get(order_id, 0):
            self.revisions[order_id] = revision
            # The ticket is encoded once by the bridge; the correlation id goes after it.
            trace = _correlation(event)
            tail = ', "correlation_id": ' + json.dumps(trace["correlation_id"]) if trace else ""
            await self.send(text_data='{"type": "kitchen.ticket", "ticket": ' + event["ticket_json"] + tail + "}")
            log_push("kitchen", {"type": "kitchen.ticket", "order_id": order_id, **trace})

    async def _send_updates(self, order_id: int, event: dict[str, Any]) -> None:
        frame = update_frame_of(event)
        for unseen in await unseen_frames(order_id, self.versions.get(order_id), frame):
            self.versions[order_id] = unseen["version"]
            await self.send_json(unseen)
            log_push("kitchen", unseen)


def _correlation(event: dict[str, Any]) -> dict[str, str]:
    value = event.get("correlation_id")
    return {"correlation_id": value} if isinstance(value, str) and value else {}


@database_sync_to_async
def _restaurant_exists(restaurant_id: int) -> bool:
    try:
        restaurant_get(restaurant_id=restaurant_id)
    except NotFound:
        return False
    return True


@database_sync_to_async
def _menu_snapshot(restaurant_id: int) -> dict[str, Any]:
    return {
        "type": "menu.snapshot",
        "restaurant_id": restaurant_id,
        "items": [
            {"menu_item_id": item.pk, "remaining": item.remaining_today, "available": item.orderable}
            for item in menu_items(restaurant_id=restaurant_id).order_by("pk")
        ],
    }


@database_sync_to_async
def _board_snapshot(restaurant_id: int) -> dict[str, Any]:
    return {
        "type": "board.snapshot",
        "restaurant_id": restaurant_id,
        "orders": [
            {"order_id": order_id, "status": status, "fulfilment": fulfilment}
            for order_id, status, fulfilment in pickup_board_orders(restaurant_id=restaurant_id)
        ],
    }


class PublicRestaurantConsumer(LiveConsumer):
    """A public page of one restaurant: anyone may watch it; a restaurant that does not exist is
    refused with 4404. Join first, then read, as every live socket does."""

    restaurant_id: int

    async def connect(self) -> None:
        self.restaurant_id = int(self.scope["url_route"]["kwargs"]["restaurant_id"])
        if not await _restaurant_exists(self.restaurant_id):
            await self.refuse(CLOSE_NOT_FOUND)
            return
        await self.join(self.group(self.restaurant_id))
        await self.accept()
        await self.send_json(await self.snapshot(self.restaurant_id))

    async def resync(self) -> None:
        await self.send_json(await self.snapshot(self.restaurant_id))

    def group(self, restaurant_id: int) -> str:
        raise NotImplementedError

    async def snapshot(self, restaurant_id: int) -> dict[str, Any]:
        raise NotImplementedError


class MenuConsumer(PublicRestaurantConsumer):
    """A restaurant's stock: ``menu.snapshot`` (every dish: remaining today, orderable), then
    ``menu.stock`` for each change, ``menu.item`` when the staff edit a dish and ``menu.state``
    when they change whether it takes orders, for anyone looking at its menu (public, as the
    menu is)."""

    def group(self, restaurant_id: int) -> str:
        return menu_group(restaurant_id)

    async def snapshot(self, restaurant_id: int) -> dict[str, Any]:
        return await _menu_snapshot(restaurant_id)

    async def menu_stock(self, event: dict[str, Any]) -> None:
        await self.send_json(
            {"type": "menu.stock", "menu_item_id": event["menu_item_id"], "remaining": event["remaining"]}
        )

    async def menu_item(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "menu.item", "menu_item_id": event["menu_item_id"]})

    async def menu_state(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "menu.state", "restaurant_id": event["restaurant_id"]})


class BoardConsumer(PublicRestaurantConsumer):
    """A restaurant's pick-up board, order numbers and statuses only, public: ``board.snapshot``
    (the orders it shows), then ``board.update`` for each change."""

    def group(self, restaurant_id: int) -> str:
        return board_group(restaurant_id)

    async def snapshot(self, restaurant_id: int) -> dict[str, Any]:
        return await _board_snapshot(restaurant_id)

    async def board_update(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "board.update", "order_id": event["order_id"], "status": event["status"]})
