"""The staff dashboard's socket: ``/ws/dashboard/{restaurant_id}/`` (that restaurant's staff, or
operators) and ``/ws/dashboard/`` (all restaurants, operators only).

On connect it joins the dashboard's group, then sends the figures read after joining (so a
change committed in between is not lost, and a reconnect always catches up); then every
figures message the analytics worker pushes. Each frame is the whole set of figures, so a
dropped push costs nothing but a wait for the next one; a push computed before the figures
already sent (two analytics copies racing) is not sent. ``{"type": "sync"}`` re-checks that
the user may still look and sends fresh figures (pages ask every half minute, which also
moves the per-minute chart along when nothing happens).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from analytics.selectors import dashboard_allowed, dashboard_figures
from live.consumers import StaffScreen
from live.groups import dashboard_group
from ordering.exceptions import NotFound
from ordering.selectors import restaurant_get


@database_sync_to_async
def _allowed(user, restaurant_id: int | None) -> bool:
    if restaurant_id is not None:
        try:
            restaurant_get(restaurant_id=restaurant_id)
        except NotFound:
            return False  # a missing restaurant looks like someone else's
    return dashboard_allowed(user=user, restaurant_id=restaurant_id)


@database_sync_to_async
def _figures(restaurant_id: int | None) -> dict[str, Any]:
    return dashboard_figures(restaurant_id=restaurant_id).as_json()


class DashboardConsumer(StaffScreen):
    """Live figures of one restaurant, or of all of them."""

    # The as_of (µs since the epoch) of the figures last sent; older pushes are not sent.
    shown_us = 0

    def screen_group(self) -> str:
        return dashboard_group(self.restaurant_id)

    async def send_snapshot(self) -> None:
        figures = await _figures(self.restaurant_id)
        self.shown_us = max(self.shown_us, figures["as_of_us"])
        await self.send_json({"type": "dashboard.figures", "figures": figures})

    async def still_allowed(self) -> bool:
        # Someone who no longer works there stops seeing the screen.
        return await _allowed(self.scope["user"], self.restaurant_id)

    async def dashboard_figures(self, event: dict[str, Any]) -> None:
        """A group message from the analytics worker: the figures, JSON-encoded once for every socket."""
        if event["as_of_us"] < self.shown_us:
            return
        self.shown_us = event["as_of_us"]
        await self.send(text_data='{"type": "dashboard.figures", "figures": ' + event["figures_json"] + "}")
