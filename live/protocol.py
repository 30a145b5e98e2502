"""The WebSocket protocol, declared: every frame each way, and every socket path.

Pure declarations (no Channels): one pydantic model per frame, server → client and client →
server, and one :class:`Socket` per path saying who may connect, what it sends and takes and
how it closes. ``passline/asyncapi.py`` turns them into the AsyncAPI document
(``docs/asyncapi.json``); the integration tests validate the frames the real sockets send
against these models, so the document cannot drift from the sockets unnoticed.

Frames are JSON objects with a ``type``. A client ignores fields it does not know (fields are
only ever added) and frames of a type it does not know.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ordering.api_schemas import KitchenTicketOut, OrderOut
from ordering.status import OrderStatus


class Frame(BaseModel):
    """A frame: a JSON object with a ``type``; fields beyond the declared ones are kept, not
    refused (a newer server may add some), and :func:`undeclared` names them."""

    model_config = ConfigDict(extra="allow")


# --- server → client ------------------------------------------------------------------------


class OrderSnapshot(Frame):
    """The order as it is now, first on every order socket."""

    type: Literal["order.snapshot"]
    order: OrderOut


class OrderUpdate(Frame):
    """One status change of an order: versions rise by one; a socket sends each version once,
    in order."""

    type: Literal["order.update"]
    order_id: int
    status: OrderStatus
    version: int = Field(ge=1)
    at: datetime.datetime
    correlation_id: str | None = Field(
        default=None,
        description="The id of the request that made the change (its X-Request-ID), where known: "
        "an operator finds that request's log lines, messages and handlers by it.",
    )


class CustomerOrderUpdate(OrderUpdate):
    """An order update on ``/ws/me/``, with the status's label for a notice."""

    label: str = Field(description='The status in words, e.g. "Being prepared".')


class Notification(Frame):
    """A notification planned for the customer, shown as a toast; several tabs show one ``key`` once."""

    type: Literal["notification"]
    id: int
    key: str
    message: str
    title: str
    body: str
    link: str
    order_id: int | None


class KitchenSnapshot(Frame):
    """A kitchen's tickets: open ones, and those closed in the last minutes (still recallable)."""

    type: Literal["kitchen.snapshot"]
    orders: list[KitchenTicketOut] = Field(description="The open tickets, oldest first.")
    recent: list[KitchenTicketOut] = Field(description="Tickets closed in the last 15 minutes.")
    server_time: datetime.datetime = Field(description="The server's clock: screens time tickets against it.")


class KitchenTicket(Frame):
    """The whole ticket after any change of it (status, a dish crossed off, the priority flag);
    apply it only when its ``revision`` is newer than the one shown."""

    type: Literal["kitchen.ticket"]
    ticket: KitchenTicketOut
    correlation_id: str | None = Field(
        default=None, description="The id of the request that changed the ticket, where known."
    )


class MenuSnapshotItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    menu_item_id: int
    remaining: int | None = Field(description="Left of today's stock; null when the dish has no daily limit.")
    available: bool = Field(description="Can be ordered now: on the menu and not sold out.")


class MenuSnapshot(Frame):
    """Every dish of the restaurant, first on the menu socket."""

    type: Literal["menu.snapshot"]
    restaurant_id: int
    items: list[MenuSnapshotItem]


class MenuStock(Frame):
    """A dish with a daily limit was reserved or released."""

    type: Literal["menu.stock"]
    menu_item_id: int
    remaining: int = Field(ge=0, description="Left today; 0 is sold out.")


class MenuItemFrame(Frame):
    """The staff changed a dish (name, price, description, on sale or not) or added it: fetch it again."""

    type: Literal["menu.item"]
    menu_item_id: int


class MenuState(Frame):
    """The staff changed whether the restaurant takes orders (busy, closed, hours): fetch its state again."""

    type: Literal["menu.state"]
    restaurant_id: int


class BoardOrder(BaseModel):
    model_config = ConfigDict(extra="allow")

    order_id: int
    status: OrderStatus
    fulfilment: Literal["delivery", "pickup"] = Field(
        "delivery", description="Collected at the counter (`pickup`) or taken by a courier (`delivery`)."
    )


class BoardSnapshot(Frame):
    """The orders the pick-up board shows (accepted, preparing, ready), oldest first."""

    type: Literal["board.snapshot"]
    restaurant_id: int
    orders: list[BoardOrder]


class BoardUpdate(Frame):
    """An order's new status: accepted, preparing or ready put it on the board or move it;
    out_for_delivery and delivered take it off."""

    type: Literal["board.update"]
    order_id: int
    status: OrderStatus


class TopDish(BaseModel):
    model_config = ConfigDict(extra="allow")

    menu_item_id: int
    name: str
    quantity: int
    amount: str = Field(description="Decimal string, two places.")


class DayCounts(BaseModel):
    model_config = ConfigDict(extra="allow")

    orders_today: int
    paid_orders_today: int
    revenue_gross: str = Field(description="Decimal string, two places.")
    refunds_count: int
    refunds_amount: str = Field(description="Decimal string, two places.")
    revenue_net: str = Field(description="Decimal string, two places.")
    ready_today: int
    avg_paid_to_ready_seconds: int | None
    avg_paid_to_ready: str = Field(description="The same as m:ss (h:mm:ss past an hour); empty when none.")
    payment_failures: int
    rejections: int
    cancellations: int


class RestaurantFigures(DayCounts):
    restaurant_id: int
    name: str


class Figures(DayCounts):
    """Today's figures of one restaurant or of all (analytics/selectors.py)."""

    restaurant_id: int | None = Field(description="Null: all restaurants.")
    as_of: datetime.datetime
    as_of_us: int = Field(description="as_of in microseconds since the epoch: show a frame only if not older.")
    day: datetime.date
    day_label: str
    top_dishes: list[TopDish]
    series_start: datetime.datetime
    series_start_ms: int
    per_minute: list[int] = Field(description="Orders placed per minute from series_start.")
    current_rate: int = Field(description="Orders placed in the last 60 seconds.")
    restaurants: list[RestaurantFigures] = Field(description="All-restaurants figures only: each restaurant's.")


class DashboardFigures(Frame):
    """The whole set of figures: on connect, on every sync, and whenever they change."""

    type: Literal["dashboard.figures"]
    figures: Figures


class Pong(Frame):
    """The answer to a ping."""

    type: Literal["pong"]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: Literal["invalid_message"]
    message: str = Field(description="Which frames this socket takes.")


class Error(Frame):
    """A client frame this socket does not take (the socket stays open)."""

    type: Literal["error"]
    error: ErrorDetail


# --- client → server ------------------------------------------------------------------------


class Ping(Frame):
    """Keep-alive: answered with a pong. Pages ping every 20 s and reconnect after 30 s of silence."""

    type: Literal["ping"]


class Resume(Frame):
    """Send every ``order.update`` after version N, in order, even those the snapshot already
    showed; then live updates, each version once."""

    type: Literal["resume"]
    after_version: int = Field(ge=0)


class Watching(Frame):
    """Whether the order's page is in view: the order's own customer is spared emails and texts
    for steps they watch happen (other clients may send it; it counts for nothing)."""

    type: Literal["watching"]
    visible: bool


class Sync(Frame):
    """Ask for a fresh snapshot; the socket re-checks access first (4403 when it is gone)."""

    type: Literal["sync"]


# --- close codes and sockets ----------------------------------------------------------------

CLOSE_CODES: dict[int, str] = {
    1009: "Message too big: the client sent a frame over the server's limit (4 KiB by default). Do not retry as is.",
    1013: "Try again later: the server cannot serve live updates right now (Redis is away); reconnect with back-off.",
    4401: "Not authenticated, or no longer: the browser session that opened the socket logged out, expired "
    "or was ended by a password change, the account was deactivated, or the bearer token expired or "
    "was revoked (checked on every client frame and every minute). Do not retry as is: sign in again.",
    4403: "Not allowed: not yours, not your restaurant, or it does not exist (a missing order looks like "
    "another customer's); on an open socket, the user lost the right to see it (no longer staff of the "
    "restaurant). Do not retry.",
    4404: "The restaurant does not exist. Do not retry.",
    4429: "Too many: the socket sent frames faster than allowed, or (at connect) the client's address "
    "already holds as many sockets as allowed. Reconnect later, with back-off.",
}


@dataclass(frozen=True)
class Socket:
    """One WebSocket path: who may connect, the frames it sends and takes, its close codes."""

    name: str
    path: str
    who: str
    description: str
    sends: tuple[type[Frame], ...]
    takes: tuple[type[Frame], ...]
    closes: tuple[int, ...]
    # Path parameters: name -> description.
    parameters: tuple[tuple[str, str], ...] = ()


SOCKETS: tuple[Socket, ...] = (
    Socket(
        name="orders",
        path="/ws/orders/{order_id}/",
        parameters=(("order_id", "The order's id."),),
        who="The order's customer, or staff of its restaurant.",
        description="One order: `order.snapshot` on connect, then `order.update` for every change, each version "
        "once and in order (a gap is filled from the database). After `resume` with N: every update "
        "after N as `order.update` frames, in order, even when the snapshot already showed a later "
        "version, then live updates, each version once.",
        sends=(OrderSnapshot, OrderUpdate, Pong, Error),
        takes=(Ping, Resume, Watching),
        closes=(4401, 4403, 1009, 4429, 1013),
    ),
    Socket(
        name="kitchen",
        path="/ws/kitchen/{restaurant_id}/",
        parameters=(("restaurant_id", "The restaurant's id."),),
        who="Staff of the restaurant.",
        description="A kitchen: `kitchen.snapshot` on connect and on every `sync`, then `order.update` for every "
        "status change of the restaurant's orders (new paid orders included; newer versions only) and "
        "`kitchen.ticket` for every change of a ticket (newer revisions only).",
        sends=(KitchenSnapshot, OrderUpdate, KitchenTicket, Pong, Error),
        takes=(Ping, Sync),
        closes=(4401, 4403, 1009, 4429, 1013),
    ),
    Socket(
        name="menus",
        path="/ws/menus/{restaurant_id}/",
        parameters=(("restaurant_id", "The restaurant's id."),),
        who="Anyone (public, as the menu is).",
        description="A restaurant's stock: `menu.snapshot` on connect, then `menu.stock` for each reservation "
        "or release of a dish with a daily limit.",
        sends=(MenuSnapshot, MenuStock, MenuItemFrame, MenuState, Pong),
        takes=(Ping,),
        closes=(4404, 1009, 4429, 1013),
    ),
    Socket(
        name="boards",
        path="/ws/boards/{restaurant_id}/",
        parameters=(("restaurant_id", "The restaurant's id."),),
        who="Anyone (public: order numbers and statuses, nothing personal).",
        description="A restaurant's pick-up board: `board.snapshot` on connect, then `board.update` for each "
        "change that puts an order on the board, moves it, or takes it off.",
        sends=(BoardSnapshot, BoardUpdate, Pong),
        takes=(Ping,),
        closes=(4404, 1009, 4429, 1013),
    ),
    Socket(
        name="me",
        path="/ws/me/",
        who="Any signed-in user: their own orders and notifications.",
        description="The signed-in customer's orders (`order.update` with a `label`) and the notifications "
        "planned for them (`notification`), for notices on any page. No snapshot.",
        sends=(CustomerOrderUpdate, Notification, Pong),
        takes=(Ping,),
        closes=(4401, 1009, 4429, 1013),
    ),
    Socket(
        name="dashboard",
        path="/ws/dashboard/",
        who="Operators (superusers, or the analytics.view_all_restaurants permission).",
        description="All restaurants' live figures: `dashboard.figures` on connect, on every `sync` and at each "
        "change (pushes older than what was sent are not sent).",
        sends=(DashboardFigures, Pong, Error),
        takes=(Ping, Sync),
        closes=(4401, 4403, 1009, 4429, 1013),
    ),
    Socket(
        name="dashboard_restaurant",
        path="/ws/dashboard/{restaurant_id}/",
        parameters=(("restaurant_id", "The restaurant's id."),),
        who="Staff of the restaurant, and operators.",
        description="One restaurant's live figures, as `/ws/dashboard/` (a restaurant that does not exist is "
        "refused like another's: 4403).",
        sends=(DashboardFigures, Pong, Error),
        takes=(Ping, Sync),
        closes=(4401, 4403, 1009, 4429, 1013),
    ),
)


def frame_model(socket: Socket, data: Any) -> type[Frame]:
    """The model of a frame ``socket`` sends, by the frame's ``type``; KeyError when it sends no such frame."""
    kind = data.get("type") if isinstance(data, dict) else None
    for model in socket.sends:
        if model.model_fields["type"].annotation == Literal[kind]:
            return model
    raise KeyError(f"{socket.path} sends no frame of type {kind!r}")


def undeclared(value: Any, where: str = "") -> list[str]:
    """The fields of a validated frame that its models do not declare (``order.x``): none when
    the declaration is complete."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        found += [f"{where}{name}" for name in sorted(value.model_extra or {})]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{where}{name}.")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found += undeclared(item, f"{where}{index}.")
    return found
